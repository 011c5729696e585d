"""Turn the CLI's operator options (0-255 sigma, kernel spec, mask spec) into an Operator."""
from __future__ import annotations

from pathlib import Path

import torch

from restore.errors import RestoreError
from restore.io import read_image
from restore.operators import Operator, PoissonGaussianNoise, make_operator, random_mask, satellite_operator


def check_sigma(sigma: float | None) -> None:
    """Refuse a noise level outside [0, 255] (0-255 units), or not a number."""
    if sigma is not None and not 0 <= sigma <= 255:
        raise RestoreError(f"--sigma must be a number in [0, 255] (0-255 units), got {sigma}")


def check_denoise_sigma(task: str, sigma: float | None) -> None:
    """Refuse ``--sigma 0`` for denoising: it would mean no noise, not "estimate it" (leave --sigma out for that)."""
    if task == "denoise" and sigma is not None and sigma == 0:
        raise RestoreError("--sigma 0 means there is no noise to remove; leave --sigma out to estimate it per image")


def load_mask(spec: str | None, shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor | None:
    """A 1 x 1 x H x W {0, 1} mask from ``FILE`` (white/non-zero = observed) or ``random:FRACTION``."""
    if spec is None:
        return None
    if spec.startswith("random:"):
        try:
            fraction = float(spec.split(":", 1)[1])
        except ValueError:
            raise RestoreError(f"--mask random:FRACTION needs a number in [0, 1], got '{spec}'") from None
        return random_mask(shape[0], shape[1], fraction, generator)
    path = Path(spec)
    if not path.is_file():
        raise RestoreError(f"mask file not found: {spec} (expected an image or random:FRACTION)")
    m = read_image(path).pixels[:, :1]
    if tuple(m.shape[-2:]) != tuple(shape):
        raise RestoreError(f"mask {spec} is {m.shape[-2]}x{m.shape[-1]}, the image is {shape[0]}x{shape[1]}")
    return (m > 0.5).float()


def build_operator(
    task: str,
    *,
    sigma_255: float | None,
    kernel: str | None,
    scale: int | None,
    mask: torch.Tensor | None,
    psf_mtf: float | None = None,
    sigma_poisson: float | None = None,
) -> Operator:
    """The operator for a task with the CLI's units (sigma in 0-255).

    ``psf_mtf`` switches deblur and sr to the satellite-sensor model (Gaussian
    PSF with that MTF at Nyquist, then decimation by ``scale`` for sr);
    ``sigma_poisson`` (0-255 units: the shot-noise std at full scale) adds
    signal-dependent noise of variance (sigma_poisson/255)^2 * x.
    """
    check_sigma(sigma_255)
    sigma = (sigma_255 or 0.0) / 255.0
    gain = _gain(sigma_poisson)
    if psf_mtf is not None:
        if kernel is not None:
            raise RestoreError("--psf-mtf and --kernel both give the blur; pass one")
        if task not in ("deblur", "sr"):
            raise RestoreError(f"--psf-mtf applies to deblur and sr, not {task}")
        factor = 1 if task == "deblur" else (scale or 4)
        return satellite_operator(psf_mtf, factor=factor, gain=gain, sigma=sigma)
    op = make_operator(task, sigma=sigma, kernel=kernel, scale=scale, mask=mask)
    if gain is not None:
        op.noise = PoissonGaussianNoise(gain, sigma)
    return op


def _gain(sigma_poisson: float | None) -> float | None:
    if sigma_poisson is None:
        return None
    if not (sigma_poisson > 0 and sigma_poisson < float("inf")):
        raise RestoreError(f"--sigma-poisson must be a number > 0 (0-255 units), got {sigma_poisson}")
    return (sigma_poisson / 255.0) ** 2


def validate_options(task: str, *, sigma_255: float | None, kernel: str | None, scale: int | None, mask: str | None,
                     psf_mtf: float | None = None, sigma_poisson: float | None = None) -> None:
    """Check the operator options once, before any image is read (fail fast, no partial output)."""
    check_sigma(sigma_255)
    if mask is not None and task != "inpaint":
        raise RestoreError(f"--mask applies to the inpaint task only, not {task!r}")
    if task == "inpaint":
        if mask is None:
            raise RestoreError("the inpaint task needs --mask FILE or --mask random:FRACTION")
        _gain(sigma_poisson)
        return
    build_operator(task, sigma_255=sigma_255, kernel=kernel, scale=scale, mask=None, psf_mtf=psf_mtf,
                   sigma_poisson=sigma_poisson)
