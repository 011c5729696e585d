"""Which bands of an image a restorer sees together: all, RGB triples plus gray bands, or one by one."""
from __future__ import annotations

from dataclasses import dataclass

from restore.errors import RestoreError
from restore.operators.base import Operator
from restore.restorers.base import Restorer


@dataclass(frozen=True)
class BandGroup:
    """Bands ``bands`` of an image, restored together by ``restorer`` inverting ``operator``."""

    bands: slice
    restorer: Restorer
    operator: Operator


def band_slices(channels: int, accepted: tuple[int, ...] | None) -> list[slice]:
    """How to split ``channels`` bands for a restorer taking ``accepted`` channel counts.

    All together when it can. Otherwise, for a restorer of RGB and gray images,
    consecutive triples go through as RGB and the rest one by one as gray (a
    4-band RGB+NIR raster: bands 1-3 as colour, band 4 as gray, so the colour
    prior still sees the visible bands together); for a gray-only restorer,
    every band alone.
    """
    if accepted is None or channels in accepted:
        return [slice(0, channels)]
    if 1 not in accepted:
        raise RestoreError(f"the model takes {' or '.join(map(str, accepted))}-channel images, not {channels} bands")
    triples = channels // 3 if 3 in accepted else 0
    groups = [slice(3 * k, 3 * k + 3) for k in range(triples)]
    return groups + [slice(c, c + 1) for c in range(3 * triples, channels)]
