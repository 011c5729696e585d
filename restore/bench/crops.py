"""Central crops of benchmark images, so that every study scores the same window of a scene.

The window is ``size`` x ``size`` at rows ``(H - size) // 2`` and columns
``(W - size) // 2`` (the odd pixel goes to the bottom and right): the rule of
``restore bench --crop`` and of the studies in ``benchmarks/studies/``.

Example:
    >>> import torch
    >>> centre_crop(torch.arange(16.0).view(1, 1, 4, 4), 2).flatten().tolist()
    [5.0, 6.0, 9.0, 10.0]
"""
from __future__ import annotations

from pathlib import Path

import torch

from restore.errors import RestoreError
from restore.io import read_image


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` window of ``x`` (``... x H x W``), a view.

    Raises:
        RestoreError: ``size`` is not a positive int, ``x`` has fewer than two
            dimensions, or ``x`` is smaller than ``size`` on a side.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise RestoreError(f"crop size must be a positive int, got {size!r}")
    if x.ndim < 2:
        raise RestoreError(f"centre_crop needs an image of shape (..., H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if min(h, w) < size:
        raise RestoreError(f"image {w} x {h} is smaller than the {size} x {size} crop")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def read_centre_crop(path: Path, size: int) -> torch.Tensor:
    """``path`` read as 1 x C x H x W in [0, 1] (``restore.io.read_image``), cut to its central crop.

    Raises:
        RestoreError: the file cannot be read, or is smaller than the crop (the message names it).
    """
    x = read_image(path).pixels
    try:
        return centre_crop(x, size)
    except RestoreError as e:
        raise RestoreError(f"{Path(path).name}: {e}") from None
