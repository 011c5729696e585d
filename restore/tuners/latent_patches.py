"""Every overlapping p x p patch of a latent as one vector, and back by averaging the overlaps.

A B x C x h x w latent gives B x (h w) x (C p p) vectors: one per latent
position, the patch centred on it (replicate padding at the border, so that
border positions have a full patch and every position is one sample).
Folding back averages the p p estimates each position receives; without any
change to the patches it returns the latent exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from restore.errors import RestoreError


def _padding(p: int) -> tuple[int, int]:
    """(before, after): a patch of side p 'centred' on its position (even p leans to the bottom right)."""
    return (p - 1) // 2, p // 2


def _check(z: torch.Tensor, p: int) -> None:
    if z.ndim != 4:
        raise RestoreError(f"a latent must be B x C x h x w, got shape {tuple(z.shape)}")
    if not isinstance(p, int) or p < 1:
        raise RestoreError(f"the patch side must be an integer >= 1, got {p!r}")


def unfold_patches(z: torch.Tensor, p: int) -> torch.Tensor:
    """B x C x h x w latent -> B x (h w) x (C p p) patch vectors, row-major over positions."""
    _check(z, p)
    before, after = _padding(p)
    padded = F.pad(z, [before, after, before, after], mode="replicate") if p > 1 else z
    return F.unfold(padded, kernel_size=p).transpose(1, 2)


def fold_patches(patches: torch.Tensor, size: tuple[int, int], p: int) -> torch.Tensor:
    """B x (h w) x (C p p) patch vectors -> B x C x h x w latent, averaging the p p values every position gets.

    Values the patches hold for the replicate padding are dropped: the
    padding is not part of the latent.
    """
    h, w = size
    if patches.ndim != 3 or patches.shape[1] != h * w or patches.shape[2] % (p * p):
        raise RestoreError(f"expected B x {h * w} x (C*{p * p}) patches, got {tuple(patches.shape)}")
    before, after = _padding(p)
    padded_size = (h + before + after, w + before + after)
    summed = F.fold(patches.transpose(1, 2), padded_size, kernel_size=p)
    counts = F.fold(torch.ones_like(patches[:1]).transpose(1, 2), padded_size, kernel_size=p)
    return (summed / counts)[..., before : before + h, before : before + w]


def split_local_mean(z: torch.Tensor, cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(z - m, m): m the mean of z over the ``cells`` x ``cells`` window around each position (replicate border).

    ``cells`` 0 splits nothing off (m = 0). Statistics of the detail z - m
    describe texture apart from slow changes of colour and shading, which
    differ far more between two dozen scenes than any restorer changes them.
    """
    if cells == 0:
        return z, torch.zeros_like(z)
    if cells < 0 or cells % 2 == 0:
        raise RestoreError(f"the local-mean window must be an odd number of latent cells (or 0 for none), got {cells}")
    half = cells // 2
    mean = F.avg_pool2d(F.pad(z, [half, half, half, half], mode="replicate"), cells, stride=1)
    return z - mean, mean
