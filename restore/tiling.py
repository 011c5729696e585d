"""Split an image into tiles with a halo: the splitter of the pipeline's splitter/merger pair.

Vocabulary (all in input pixels; outputs are ``upscale`` times larger):

- *core*: the part of the image a tile answers for. Cores are ``tile`` wide
  and step by ``tile - overlap``; the last one is flush with the image edge.
- *halo*: context read around the core and thrown away afterwards, at least
  the restorer's receptive field, so that the core does not see the tile edge.
- *read window*: core plus halo. Every read window of a grid has the same size
  (it is shifted inwards at the image border rather than clipped), so that
  tiles stack into batches; at the border the window ends where the image
  ends, as in an untiled call.

Overlapping cores are blended by a merger (``restore.merging``). With a halo
that covers the receptive field every tile's core equals the untiled output,
so the blend changes nothing; for stochastic restorers it hides the seams.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from restore.errors import RestoreError


def tile_starts(size: int, tile: int, overlap: int = 0) -> list[int]:
    """Start offsets of cores of length ``tile`` stepping by ``tile - overlap`` (last flush with the end)."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile - overlap))
    starts.append(size - tile)
    return starts


@dataclass(frozen=True)
class Tile:
    """One tile: its core and its read window, as (row0, row1, col0, col1) in input pixels."""

    core: tuple[int, int, int, int]
    read: tuple[int, int, int, int]

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """The read window of a ... x H x W tensor."""
        r0, r1, c0, c1 = self.read
        return x[..., r0:r1, c0:c1]

    def core_at(self, top: int = 0, left: int = 0, upscale: int = 1) -> tuple[int, int, int, int]:
        """The core in the output of a region whose first row and column are ``top``, ``left`` (output pixels)."""
        r0, r1, c0, c1 = self.core
        return ((r0 - top) * upscale, (r1 - top) * upscale, (c0 - left) * upscale, (c1 - left) * upscale)

    def core_in_read(self, upscale: int = 1) -> tuple[slice, slice]:
        """Where the core sits inside the read window's output."""
        r0, r1, c0, c1 = self.core
        return (slice((r0 - self.read[0]) * upscale, (r1 - self.read[0]) * upscale),
                slice((c0 - self.read[2]) * upscale, (c1 - self.read[2]) * upscale))


def _read_span(start: int, end: int, halo: int, size: int, length: int) -> tuple[int, int]:
    """A window of ``length`` around [start, end) widened by ``halo``, kept inside [0, size)."""
    if length >= size:
        return 0, size
    lo = min(max(start - halo, 0), size - length)
    return lo, lo + length


class TileGrid:
    """The tiles covering an H x W image (or a region of it).

    Args:
        height, width: image size (input pixels).
        tile: core side; 0 or anything not smaller than the image means one tile.
        overlap: pixels shared by neighbouring cores (blended), < tile.
        halo: context on each side of a core (discarded).
        multiple: the read window's side is rounded up to a multiple of this
            (nets that downsample need it); the extra goes to the halo.
        region: (row0, row1, col0, col1) the cores cover; default the whole
            image. Read windows may reach outside it (a streamed block's halo).
    """

    def __init__(self, height: int, width: int, *, tile: int, overlap: int = 0, halo: int = 0, multiple: int = 1,
                 region: tuple[int, int, int, int] | None = None) -> None:
        if tile < 0 or overlap < 0 or halo < 0 or multiple < 1:
            raise RestoreError(f"tile, overlap and halo must be >= 0, got tile={tile}, overlap={overlap}, halo={halo}")
        if tile and overlap >= tile:
            raise RestoreError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
        self.height, self.width = height, width
        self.region = region or (0, height, 0, width)
        r0, r1, c0, c1 = self.region
        self.tile = tile if tile else max(r1 - r0, c1 - c0)
        self.overlap = overlap if tile else 0
        window = self.tile + 2 * halo
        self.window = math.ceil(window / multiple) * multiple
        self.halo = halo

    def __len__(self) -> int:
        r0, r1, c0, c1 = self.region
        return len(self._starts(r1 - r0)) * len(self._starts(c1 - c0))

    def _starts(self, size: int) -> list[int]:
        return tile_starts(size, self.tile, self.overlap)

    def __iter__(self) -> Iterator[Tile]:
        r0, r1, c0, c1 = self.region
        for i in self._starts(r1 - r0):
            i0, i1 = r0 + i, min(r0 + i + self.tile, r1)
            r = _read_span(i0, i1, self.halo, self.height, min(self.window, self.height))
            for j in self._starts(c1 - c0):
                j0, j1 = c0 + j, min(c0 + j + self.tile, c1)
                c = _read_span(j0, j1, self.halo, self.width, min(self.window, self.width))
                yield Tile(core=(i0, i1, j0, j1), read=(r[0], r[1], c[0], c[1]))


def partition_into_blocks(height: int, width: int, *, side: int, halo: int) -> list[Tile]:
    """Cores of side x side that partition an H x W image, each read with ``halo`` pixels of context.

    How a raster is streamed (in one process or as Dask chunks): unlike a
    ``TileGrid``'s, the cores do not overlap (the last row and column of them
    are shorter instead of flush with the edge), so each output pixel is
    written once; read windows are clipped at the image border, so they
    differ in size (blocks are restored one by one, never batched).
    """
    if side < 1 or halo < 0:
        raise RestoreError(f"need a block side >= 1 and halo >= 0, got side={side}, halo={halo}")
    return [
        Tile(core=(r, min(r + side, height), c, min(c + side, width)),
             read=(max(0, r - halo), min(height, r + side + halo), max(0, c - halo), min(width, c + side + halo)))
        for r in range(0, height, side)
        for c in range(0, width, side)
    ]


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, tile: int, halo: int
) -> torch.Tensor:
    """Apply a size-preserving ``fn`` to B x C x H x W ``x`` tile by tile, stitching cores.

    The light-weight path restorers use internally to bound memory: no overlap,
    no batching of tiles, the output on ``fn``'s device.
    """
    if tile <= 0 or halo < 0:
        raise RestoreError(f"tile must be > 0 and halo >= 0, got tile={tile}, halo={halo}")
    out: torch.Tensor | None = None
    for t in TileGrid(x.shape[-2], x.shape[-1], tile=tile, halo=halo):
        y = fn(t.crop(x))
        if out is None:
            out = y.new_empty(y.shape[0], y.shape[1], x.shape[-2], x.shape[-1])
        r0, r1, c0, c1 = t.core
        out[:, :, r0:r1, c0:c1] = y[(..., *t.core_in_read())]
    assert out is not None
    return out
