"""Merge tile outputs: blended overlaps, accumulated in float32 off the device.

The merger half of the splitter/merger pair (``restore.tiling.TileGrid``
splits): a merger takes each tile's core output with ``add(core, values)``
and gives the whole output with ``finalize()``. ``MemoryMerger`` blends
overlapping cores in memory; ``restore.raster_merger.RasterMerger`` writes
cores that partition the output straight into a GeoTIFF on disk;
``RestorationMerger`` merges whole ``Restoration`` results (image, per-pixel
std, samples) of a batch of images with one ``MemoryMerger`` per output.

Overlapping cores are blended with a raised-cosine ramp on the sides that
have a neighbour (never on the output border), and the merger divides by the
summed weights.
"""
from __future__ import annotations

import math
from typing import Protocol

import torch

from restore.restorers.base import Restoration

# (row0, row1, col0, col1) of a core in output pixels.
Core = tuple[int, int, int, int]
OUTPUTS = ("image", "std", "samples")


class TileMerger(Protocol):
    """What the pipeline's drivers need from a merger."""

    def add(self, core: Core, values: torch.Tensor) -> None: ...

    def finalize(self) -> object: ...


def ramp(length: int, rise: int, fall: int) -> torch.Tensor:
    """1-D blend weights: raised-cosine rise over ``rise`` samples, fall over ``fall``, 1 between.

    Weights are strictly positive (sampled at half-integer points), so that every
    pixel a core covers has weight.
    """
    w = torch.ones(length)
    for n, flip in ((rise, False), (fall, True)):
        n = min(n, length)
        if n <= 0:
            continue
        up = torch.sin(0.5 * math.pi * (torch.arange(n) + 0.5) / n) ** 2
        if flip:
            w[length - n:] = torch.minimum(w[length - n:], up.flip(0))
        else:
            w[:n] = torch.minimum(w[:n], up)
    return w


class MemoryMerger:
    """Accumulates blended tile outputs in float32 on the CPU; ``finalize`` divides by the weights.

    Args:
        channels, height, width: the merged output's size (output pixels).
        overlap: blend width in output pixels.
        leading: extra leading dimensions of each output (e.g. samples S).
    """

    def __init__(self, channels: int, height: int, width: int, overlap: int, leading: tuple[int, ...] = ()) -> None:
        self.total = torch.zeros(*leading, channels, height, width, dtype=torch.float32)
        self.weight = torch.zeros(height, width, dtype=torch.float32)
        self.overlap = overlap

    def add(self, core: Core, values: torch.Tensor) -> None:
        """Add ``values`` (... x C x h x w, the core's output) at output rows r0:r1, cols c0:c1."""
        r0, r1, c0, c1 = core
        h, w = self.weight.shape
        rows = ramp(r1 - r0, self.overlap if r0 > 0 else 0, self.overlap if r1 < h else 0)
        cols = ramp(c1 - c0, self.overlap if c0 > 0 else 0, self.overlap if c1 < w else 0)
        weight = rows[:, None] * cols[None, :]
        self.total[..., r0:r1, c0:c1] += values.detach().to("cpu", torch.float32) * weight
        self.weight[r0:r1, c0:c1] += weight

    def finalize(self) -> torch.Tensor:
        """The blended output (every pixel must have been covered)."""
        if not bool((self.weight > 0).all()):
            raise RuntimeError("tiles did not cover the whole output")
        return self.total / self.weight


class RestorationMerger:
    """Merges the tile results of ``images`` images into one Restoration of B x C x height x width.

    Args:
        images: B, how many images the tiles come from.
        height, width: each image's output size (output pixels).
        overlap: blend width in output pixels.
    """

    def __init__(self, images: int, height: int, width: int, overlap: int) -> None:
        self.size = (height, width)
        self.overlap = overlap
        self.mergers: list[dict[str, MemoryMerger]] = [{} for _ in range(images)]
        self.info: dict = {}

    def add(self, pieces: list[tuple[int, Core, tuple[slice, slice]]], result: Restoration) -> None:
        """Add ``result``, the restorer's output for a batch of tiles.

        Args:
            pieces: per tile of the batch, (image index, output core, where the core sits in the tile's output).
            result: image and std are N x C x h x w, samples S x N x C x h x w, for the N tiles.
        """
        self.info = result.info
        for name in OUTPUTS:
            values = getattr(result, name)
            if values is None:
                continue
            if name == "samples":
                values = values.transpose(0, 1)  # S x N -> N x S: one entry per tile
            for k, (b, core, (rows, cols)) in enumerate(pieces):
                self._merger(b, name, values[k]).add(core, values[k][..., rows, cols])

    def _merger(self, image: int, name: str, example: torch.Tensor) -> MemoryMerger:
        if name not in self.mergers[image]:
            leading = tuple(example.shape[:-3])
            self.mergers[image][name] = MemoryMerger(example.shape[-3], *self.size, self.overlap, leading)
        return self.mergers[image][name]

    def finalize(self) -> Restoration:
        """The merged Restoration (samples S x B x C x H x W), with the info of the last batch."""
        merged = {name: torch.stack([m[name].finalize() for m in self.mergers]) for name in self.mergers[0]}
        samples = merged.get("samples")
        return Restoration(
            image=merged["image"],
            std=merged.get("std"),
            samples=samples.transpose(0, 1) if samples is not None else None,  # B x S -> S x B
            info=self.info,
        )
