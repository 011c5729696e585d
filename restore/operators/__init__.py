"""Degradation operators y = A x + n, their noise models and the CLI factory."""
from __future__ import annotations

import torch

from restore.errors import RestoreError
from restore.operators.base import Operator, check_image
from restore.operators.blur import Blur
from restore.operators.compose import Compose
from restore.operators.decimate import Decimate
from restore.operators.denoise import Denoise
from restore.operators.downsample import Downsample
from restore.operators.inpaint import Inpaint, random_mask
from restore.operators.kernels import (
    gaussian_kernel,
    load_kernel,
    motion_kernel,
    mtf_psf,
    parse_kernel,
)
from restore.operators.noise import GaussianNoise, NoiseModel, PoissonGaussianNoise
from restore.operators.satellite import satellite_operator

__all__ = [
    "TASKS",
    "Blur",
    "Compose",
    "Decimate",
    "Denoise",
    "Downsample",
    "GaussianNoise",
    "Inpaint",
    "NoiseModel",
    "Operator",
    "PoissonGaussianNoise",
    "check_image",
    "gaussian_kernel",
    "load_kernel",
    "make_operator",
    "motion_kernel",
    "mtf_psf",
    "parse_kernel",
    "random_mask",
    "satellite_operator",
]

TASKS = ("denoise", "deblur", "sr", "inpaint")
DEFAULT_KERNEL = "gaussian:1.6"
DEFAULT_SCALE = 4


def make_operator(
    task: str,
    *,
    sigma: float = 0.0,
    kernel: str | None = None,
    scale: int | None = None,
    mask: torch.Tensor | None = None,
    downsample_filter: str = "bicubic",
) -> Operator:
    """Build the operator of a CLI task.

    Args:
        task: "denoise", "deblur", "sr" or "inpaint".
        sigma: Gaussian noise standard deviation in [0, 1] units.
        kernel: deblur kernel spec (``gaussian:STD``, ``motion:LENGTH,ANGLE``, ``mtf:M``, ``FILE.npy``);
            default ``gaussian:1.6``. Only for deblur.
        scale: super-resolution factor 2, 3 or 4; default 4. Only for sr.
        mask: inpainting mask (1 = observed). Required for inpaint, refused otherwise.
        downsample_filter: "bicubic" or "box", for sr.

    Raises:
        RestoreError: with a one-line message for any invalid argument.
    """
    if task not in TASKS:
        raise RestoreError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if kernel is not None and task != "deblur":
        raise RestoreError(f"a kernel applies to the deblur task only, not {task!r}")
    if scale is not None and task != "sr":
        raise RestoreError(f"a scale applies to the sr task only, not {task!r}")
    if mask is not None and task != "inpaint":
        raise RestoreError(f"a mask applies to the inpaint task only, not {task!r}")
    if task == "denoise":
        return Denoise(sigma=sigma)
    if task == "deblur":
        return Blur(parse_kernel(kernel if kernel is not None else DEFAULT_KERNEL), sigma=sigma)
    if task == "sr":
        return Downsample(scale if scale is not None else DEFAULT_SCALE, filter=downsample_filter, sigma=sigma)
    if mask is None:
        raise RestoreError("the inpaint task needs a mask (1 = observed, 0 = missing)")
    return Inpaint(mask, sigma=sigma)
