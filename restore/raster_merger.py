"""The merger that writes into a raster on disk: block outputs go straight into the GeoTIFF.

A streamed raster is cut into blocks that read context (a halo) around
their cores but whose cores do not overlap; each block is restored, and
blended, in memory by the pipeline, and only its core reaches the merger. So
this merger takes cores that partition the output, writes each as it comes
(memory stays that of one block, whatever the raster's size) and, on
``finalize``, checks that they covered the whole output before the file is
renamed into place.

Use as a context manager around the writer: the output appears only if every
core was written and no error was raised.
"""
from __future__ import annotations

import numpy as np
import torch

from restore.errors import RestoreError
from restore.raster_files import RasterWriter

Core = tuple[int, int, int, int]


def upscaled_mask(mask: np.ndarray | None, upscale: int) -> np.ndarray | None:
    """A nodata mask at output resolution (nearest neighbour for SR); None when nothing is nodata."""
    if mask is None or not mask.any():
        return None
    return mask.repeat(upscale, axis=0).repeat(upscale, axis=1) if upscale > 1 else mask


def _overlaps(a: Core, b: Core) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


class RasterMerger:
    """Writes non-overlapping output cores into ``writer``'s GeoTIFF.

    Args:
        writer: the output file (a ``RasterWriter``, entered and left with this merger).
    """

    def __init__(self, writer: RasterWriter) -> None:
        self.writer = writer
        self.height, self.width = writer.size
        self.cores: list[Core] = []

    def __enter__(self) -> "RasterMerger":
        self.writer.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.finalize()
            except Exception as error:
                self.writer.__exit__(type(error), error, error.__traceback__)  # no half-written output
                raise
        self.writer.__exit__(exc_type, exc, tb)

    def add(self, core: Core, values: torch.Tensor | np.ndarray, nodata: np.ndarray | None = None) -> None:
        """Write ``values`` (C x h x w floats in [0, 1]) at output rows r0:r1, columns c0:c1 of ``core``.

        Args:
            core: where it goes, in output pixels; it must not overlap a core already written.
            values: the core's output.
            nodata: h/upscale x w/upscale boolean, the core's nodata pixels in the source (input
                resolution), written as the file's nodata value; None: none.
        """
        r0, r1, c0, c1 = core
        if not (0 <= r0 < r1 <= self.height and 0 <= c0 < c1 <= self.width):
            raise RestoreError(f"core {core} is outside the {self.height} x {self.width} output")
        if tuple(values.shape[-2:]) != (r1 - r0, c1 - c0):
            raise RestoreError(f"values of {tuple(values.shape[-2:])} pixels do not fit core {core}")
        if any(_overlaps(core, done) for done in self.cores):
            raise RestoreError(f"core {core} overlaps one already written: this merger takes cores that partition the output")
        if isinstance(values, torch.Tensor):
            values = values.detach().to("cpu", torch.float32).numpy()
        self.writer.write(r0, c0, values, upscaled_mask(nodata, self.writer.upscale))
        self.cores.append(core)

    def finalize(self) -> None:
        """Check that the written cores cover the whole output (they do not overlap, so their areas add up)."""
        area = sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in self.cores)
        if area != self.height * self.width:
            raise RuntimeError("tiles did not cover the whole output")
