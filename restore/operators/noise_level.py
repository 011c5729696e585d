"""Blind estimation of the Gaussian noise level of an image.

Principal-component method (Chen, Zhu & Heng, ICCV 2015): the covariance of
the image's patches has eigenvalues sigma^2 in every direction the clean
image does not occupy; the noise variance is the mean of the largest set of
smallest eigenvalues whose mean equals their median.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.operators.base import check_image

PATCH = 7
MAX_PATCHES = 200_000


def estimate_sigma(y: torch.Tensor) -> float:
    """Noise standard deviation of a 1 x C x H x W image, in the image's units.

    Args:
        y: the noisy image, values in [0, 1] (any channel count; channels are
            stacked into the patch vectors since the noise is i.i.d. across them).

    Returns:
        The estimated sigma (0-1 units). Reliable for sigma above about 2/255 on
        natural images; textured images bias it upwards by a little.
    """
    check_image(y, "y")
    if y.shape[-1] < PATCH or y.shape[-2] < PATCH:
        raise RestoreError(f"image {y.shape[-2]}x{y.shape[-1]} is too small to estimate noise (min {PATCH}x{PATCH})")
    x = y[:1].double()
    h, w = x.shape[-2:]
    # Subsample positions on large images: the covariance converges long before.
    n_pos = (h - PATCH + 1) * (w - PATCH + 1)
    stride = max(1, int((n_pos / MAX_PATCHES) ** 0.5))
    patches = F.unfold(x, PATCH, stride=stride)[0]  # (C*49) x L
    patches = patches - patches.mean(dim=1, keepdim=True)
    cov = patches @ patches.t() / patches.shape[1]
    eig = torch.linalg.eigvalsh(cov).clamp_min(0)  # ascending
    for i in range(eig.numel(), 0, -1):
        low = eig[:i]
        tau = low.mean()
        if (low > tau).sum() == (low < tau).sum():
            return float(tau.sqrt())
    return float(eig[0].sqrt())


# Side of the central crop the noise level of a whole image is estimated on: the
# estimate has converged long before, and every entry point (the CLI, restore.run,
# the pipeline) must estimate the same region to agree.
SAMPLE_SIDE = 1024


def centre_crop(y: torch.Tensor, side: int = SAMPLE_SIDE) -> torch.Tensor:
    """The central side x side crop (or all) of a ... x H x W tensor."""
    h, w = y.shape[-2:]
    r, c = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return y[..., r : r + side, c : c + side]


def estimate_image_sigma(y: torch.Tensor) -> float:
    """The noise level of a whole 1 x C x H x W image (its central crop), in its units, at most 1.

    The one estimate every entry point uses, so that they agree.
    """
    return min(estimate_sigma(centre_crop(y)), 1.0)
