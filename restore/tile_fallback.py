"""What one pipeline call learns while it runs, kept out of the pipeline's (frozen) settings.

A call that runs out of memory halves its tile and goes on; the smaller tile
holds for the rest of that call (the remaining images of a batch, the
remaining blocks of a streamed raster) and is forgotten when it returns: the
next call starts again from the configured tile. Likewise the "reduced
precision gave NaN" warning is said once per call.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from restore.errors import RestoreError

# Tiles are not halved below this on out-of-memory.
MIN_TILE = 32
# How allocators word running out of memory (CUDA, MPS, the CPU allocator) when they raise a plain RuntimeError.
OOM_WORDS = ("out of memory", "can't allocate memory")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a device or host allocator running out of memory."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(words in str(error).lower() for words in OOM_WORDS)


@dataclass
class TileFallback:
    """The tile and overlap one call currently runs with, and what it has already said.

    Args:
        tile: the configured tile (0: the whole image).
        overlap: the configured overlap.
    """

    tile: int
    overlap: int
    warned_precision: bool = False

    def shrink(self, side: int, device: torch.device) -> str:
        """Halve the tile after an out-of-memory on ``device`` (``side``: the image's longer side when tile is 0).

        Returns the message to log; raises ``RestoreError`` when the tile would
        drop below ``MIN_TILE``.
        """
        current = self.tile or side
        smaller = current // 2
        if smaller < MIN_TILE:
            raise RestoreError(f"out of memory on {device} even with {MIN_TILE}-pixel tiles")
        message = f"out of memory on {device} with tile {self.tile or 'whole image'}: retrying with tile {smaller}"
        self.tile, self.overlap = smaller, min(self.overlap, smaller // 2)
        return message
