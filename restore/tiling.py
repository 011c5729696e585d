"""Split an image into tiles with a halo, run a function on each, stitch the centres.

This first version stitches tile centres without blending: with a halo at
least as wide as the function's receptive field, the centres equal one
untiled call. Blending, batching and raster streaming build on it.
"""
from __future__ import annotations

from typing import Callable

import torch

from restore.errors import RestoreError


def tile_starts(size: int, tile: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``size`` (the last one flush with the end)."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile))
    starts.append(size - tile)
    return starts


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, tile: int, halo: int
) -> torch.Tensor:
    """Apply a size-preserving ``fn`` to B x C x H x W ``x`` tile by tile.

    Args:
        fn: maps B x C x h x w to B x C' x h x w.
        x: the input.
        tile: side of the output tiles (the centres kept).
        halo: context added on each side of a tile (clipped at the image border,
            where ``fn`` sees the true border as in an untiled call).
    """
    if tile <= 0 or halo < 0:
        raise RestoreError(f"tile must be > 0 and halo >= 0, got tile={tile}, halo={halo}")
    _, _, h, w = x.shape
    out: torch.Tensor | None = None
    for i in tile_starts(h, tile):
        for j in tile_starts(w, tile):
            i0, j0 = max(0, i - halo), max(0, j - halo)
            i1, j1 = min(h, i + tile + halo), min(w, j + tile + halo)
            y = fn(x[:, :, i0:i1, j0:j1])
            if out is None:
                out = y.new_empty(y.shape[0], y.shape[1], h, w)
            th, tw = min(tile, h - i), min(tile, w - j)
            out[:, :, i : i + th, j : j + tw] = y[:, :, i - i0 : i - i0 + th, j - j0 : j - j0 + tw]
    assert out is not None
    return out
