"""Operators from their specs: a task, a noise level, a kernel spec, a scale, a mask spec.

The library's one place that parses ``gaussian:1.6``, ``motion:15,30``,
``random:0.5`` and checks noise levels. Noise levels are in the image's own
units, [0, 1] (the command line converts its 0-255 values before calling), and
the messages name the keyword arguments; the CLI rewords them as flags.
"""
from __future__ import annotations

from pathlib import Path

import torch

from restore.errors import RestoreError
from restore.io import read_image
from restore.operators import Operator, PoissonGaussianNoise, make_operator, random_mask, satellite_operator
from restore.tasks import OPERATOR_OPTIONS, TASK_TABLE, task as task_row

# How a noise level is given in the library: in the image's own units.
SIGMA_HELP = "the image's units: 25/255 for 25 in 0-255"


def check_sigma(sigma: float | None, name: str = "sigma") -> None:
    """Refuse a noise level that is not a number in [0, 1] (the image's units)."""
    if sigma is None:
        return
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 <= sigma <= 1:
        raise RestoreError(f"{name} must be a number in [0, 1] ({SIGMA_HELP}), got {sigma!r}")


def check_denoise_sigma(task: str, sigma: float | None) -> None:
    """Refuse ``sigma=0`` for denoising: it would mean no noise, not "estimate it" (leave it out for that)."""
    if task == "denoise" and sigma is not None and sigma == 0:
        raise RestoreError("sigma 0 means there is no noise to remove; leave sigma out to estimate it per image")


def load_mask(spec: str | None, shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor | None:
    """A 1 x 1 x H x W {0, 1} mask from ``FILE`` (white/non-zero = observed) or ``random:FRACTION``."""
    if spec is None:
        return None
    if spec.startswith("random:"):
        try:
            fraction = float(spec.split(":", 1)[1])
        except ValueError:
            raise RestoreError(f"mask random:FRACTION needs a number in [0, 1], got '{spec}'") from None
        return random_mask(shape[0], shape[1], fraction, generator)
    path = Path(spec)
    if not path.is_file():
        raise RestoreError(f"mask file not found: {spec} (expected an image or random:FRACTION)")
    m = read_image(path).pixels[:, :1]
    if tuple(m.shape[-2:]) != tuple(shape):
        raise RestoreError(f"mask {spec} is {m.shape[-2]}x{m.shape[-1]}, the image is {shape[0]}x{shape[1]}")
    return (m > 0.5).float()


def check_mask_spec(spec: str | None) -> None:
    """Fail now, not once per image, on a bad fraction or a missing or corrupt mask file."""
    if spec is None:
        return
    if spec.startswith("random:"):
        load_mask(spec, (8, 8), torch.Generator())
    else:
        read_image(spec)


def build_operator(
    task: str,
    *,
    sigma: float | None,
    kernel: str | None = None,
    scale: int | None = None,
    mask: torch.Tensor | None = None,
    psf_mtf: float | None = None,
    sigma_poisson: float | None = None,
) -> Operator:
    """The operator of ``task`` (noise levels in [0, 1]).

    ``psf_mtf`` switches deblur and sr to the satellite-sensor model (Gaussian
    PSF with that MTF at Nyquist, then decimation by ``scale`` for sr);
    ``sigma_poisson`` (the shot-noise std at full scale, [0, 1] units) adds
    signal-dependent noise of variance sigma_poisson^2 * x.
    """
    check_sigma(sigma)
    gain = _gain(sigma_poisson)
    if psf_mtf is not None:
        if kernel is not None:
            raise RestoreError("psf_mtf and kernel both give the blur; pass one")
        if task not in ("deblur", "sr"):
            raise RestoreError(f"psf_mtf applies to deblur and sr, not {task}")
        factor = 1 if task == "deblur" else (scale or 4)
        return satellite_operator(psf_mtf, factor=factor, gain=gain, sigma=sigma or 0.0)
    op = make_operator(task, sigma=sigma or 0.0, kernel=kernel, scale=scale, mask=mask)
    if gain is not None:
        op.noise = PoissonGaussianNoise(gain, sigma or 0.0)
    return op


def validate_operator_spec(task: str, *, sigma: float | None, kernel: str | None = None, scale: int | None = None,
                           mask: str | None = None, psf_mtf: float | None = None,
                           sigma_poisson: float | None = None) -> None:
    """Check a task's operator options once, before any image is read (fail fast, no partial output)."""
    row = task_row(task)
    given = dict(zip(OPERATOR_OPTIONS, (sigma, kernel, scale, mask, psf_mtf, sigma_poisson)))
    for name, value in given.items():
        if value is not None and name not in row.options:
            takers = [t.name for t in TASK_TABLE.values() if name in t.options]
            raise RestoreError(f"{name} applies to {' and '.join(takers)}, not {task} "
                               f"(which takes {', '.join(row.options)})")
    check_sigma(sigma)
    if task == "inpaint":
        if mask is None:
            raise RestoreError("the inpaint task needs mask=FILE or mask='random:FRACTION'")
        _gain(sigma_poisson)
        check_mask_spec(mask)
        return
    build_operator(task, sigma=sigma, kernel=kernel, scale=scale, psf_mtf=psf_mtf, sigma_poisson=sigma_poisson)


def _gain(sigma_poisson: float | None) -> float | None:
    if sigma_poisson is None:
        return None
    if not (isinstance(sigma_poisson, (int, float)) and 0 < sigma_poisson <= 1):
        raise RestoreError(f"sigma_poisson must be a number in (0, 1] ({SIGMA_HELP}), got {sigma_poisson!r}")
    return float(sigma_poisson) ** 2
