"""Turn the CLI's operator options (0-255 sigma, kernel spec, mask spec) into an Operator."""
from __future__ import annotations

from pathlib import Path

import torch

from restore.errors import RestoreError
from restore.io import read_image
from restore.operators import Operator, make_operator, random_mask


def check_sigma(sigma: float | None) -> None:
    """Refuse a negative or non-finite noise level given in 0-255 units."""
    if sigma is not None and not (sigma >= 0 and sigma < float("inf")):
        raise RestoreError(f"--sigma must be a number >= 0 (0-255 units), got {sigma}")


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
) -> Operator:
    """The operator for a task with the CLI's units (sigma in 0-255)."""
    check_sigma(sigma_255)
    return make_operator(task, sigma=(sigma_255 or 0.0) / 255.0, kernel=kernel, scale=scale, mask=mask)


def validate_options(task: str, *, sigma_255: float | None, kernel: str | None, scale: int | None, mask: str | None) -> None:
    """Check the operator options once, before any image is read (fail fast, no partial output)."""
    check_sigma(sigma_255)
    if mask is not None and task != "inpaint":
        raise RestoreError(f"--mask applies to the inpaint task only, not {task!r}")
    if task == "inpaint":
        if mask is None:
            raise RestoreError("the inpaint task needs --mask FILE or --mask random:FRACTION")
        return
    build_operator(task, sigma_255=sigma_255, kernel=kernel, scale=scale, mask=None)
