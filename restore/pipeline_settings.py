"""What a ``Pipeline`` is built with, fixed at construction: a frozen, checked dataclass.

The settings never change afterwards: a call that has to shrink its tiles
(out of memory) does so for that call only (``restore.tile_fallback``), so
that the next call, and every copy sent to a Dask worker, starts again from
what the caller asked for.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from restore.errors import RestoreError

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_OVERLAP = 64
# No tile core is smaller than this, nor than its halo: smaller ones spend most of their time on context.
SMALLEST_TILE = 16


def min_tile(halo: int) -> int:
    """The smallest tile side worth running with a halo of ``halo`` pixels."""
    return max(SMALLEST_TILE, int(halo))


def default_overlap(tile: int, stochastic: bool) -> int:
    """A quarter of the tile, at most 64, for stochastic restorers; 0 for deterministic ones.

    A deterministic restorer with a full halo gives the same core whatever the
    tile, so blending would only cost time; samplers need it to hide seams.
    """
    return min(DEFAULT_OVERLAP, tile // 4) if stochastic else 0


@dataclass(frozen=True)
class PipelineSettings:
    """How a pipeline cuts, batches and computes; see ``Pipeline`` for each field.

    Assigning a field raises ``dataclasses.FrozenInstanceError``; use
    ``dataclasses.replace`` (or ``Pipeline.replace``) for other settings.
    """

    tile: int
    overlap: int
    batch_size: int
    device: torch.device
    precision: str
    halo: int
    seed: int
    block: int
    progress: bool

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise RestoreError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.batch_size < 1:
            raise RestoreError(f"batch size must be >= 1, got {self.batch_size}")
        if self.tile < 0 or self.overlap < 0 or (self.tile and self.overlap >= self.tile):
            raise RestoreError(f"need tile >= 0 and 0 <= overlap < tile, got tile={self.tile}, overlap={self.overlap}")
        if self.halo < 0:
            raise RestoreError(f"halo must be >= 0, got {self.halo}")
        if self.tile and self.tile < min_tile(self.halo):
            raise RestoreError(f"tile {self.tile} is too small for a halo of {self.halo} pixels (this restorer and "
                               f"operator): use a tile of at least {min_tile(self.halo)}, or 0 for the whole image")
        if self.block < max(1, self.tile):
            raise RestoreError(f"block must be >= the tile ({self.tile}), got {self.block}")

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype of ``precision``."""
        return PRECISIONS[self.precision]


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are one ("cuda" is the current CUDA device, so it equals "cuda:0" there)."""
    return a.type == b.type and _index(a) == _index(b)


def _index(device: torch.device) -> int:
    if device.index is not None:
        return device.index
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.current_device()
    return 0
