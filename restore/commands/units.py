"""The command line's noise levels are in 0-255 units; the library's in the image's own, [0, 1].

Every command converts here, after checking the value in the units its user
typed, so that a message about ``--sigma`` speaks 0-255.
"""
from __future__ import annotations

from restore.errors import RestoreError

FULL_SCALE = 255.0


def sigma_from_cli(sigma_255: float | None, flag: str = "--sigma") -> float | None:
    """``--sigma 25`` -> 25/255, refused outside [0, 255]."""
    if sigma_255 is None:
        return None
    if not 0 <= sigma_255 <= FULL_SCALE:
        raise RestoreError(f"{flag} must be a number in [0, 255] (0-255 units), got {sigma_255:g}")
    return sigma_255 / FULL_SCALE


def denoise_sigma_from_cli(task: str, sigma_255: float | None) -> float | None:
    """As ``sigma_from_cli``, refusing ``--sigma 0`` for denoising (it would mean no noise, not "estimate it")."""
    if task == "denoise" and sigma_255 is not None and sigma_255 == 0:
        raise RestoreError("--sigma 0 means there is no noise to remove; leave --sigma out to estimate it per image")
    return sigma_from_cli(sigma_255)


def poisson_from_cli(sigma_poisson_255: float | None) -> float | None:
    """``--sigma-poisson S`` (the shot-noise std at full scale, 0-255 units) -> S/255, refused unless in (0, 255]."""
    if sigma_poisson_255 is None:
        return None
    if not 0 < sigma_poisson_255 <= FULL_SCALE:
        raise RestoreError(f"--sigma-poisson must be a number in (0, 255] (0-255 units), got {sigma_poisson_255:g}")
    return sigma_poisson_255 / FULL_SCALE


def sigma_to_cli(sigma: float | None) -> str:
    """A [0, 1] noise level as the CLI says it (0-255 units)."""
    return "?" if sigma is None else f"{sigma * FULL_SCALE:.2f}"
