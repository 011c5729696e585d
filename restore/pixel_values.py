"""Checks of pixel values at the library's boundary: non-finite pixels, and float data not in [0, 1].

One NaN or inf pixel spreads through any restorer's filters into a whole NaN
output, and an image in 0-255 given as [0, 1] floats gives garbage: both are
refused where data enters the library (file reading, ``Restorer.restore``,
``Pipeline``), naming what was found and how to fix it.
"""
from __future__ import annotations

import torch

from restore.errors import RestoreError

# Float images are nominally in [0, 1]; unclipped noisy inputs legitimately stray outside it, not this far.
LOW, HIGH = -1.0, 2.0
# Extra room per unit of the operator's noise std (values within 6 sigma of [0, 1] are noise, not units).
NOISE_SIGMAS = 6.0
# Full-scale values suggested when float data is out of range: the first one the data fits under.
FULL_SCALES = (255.0, 1023.0, 4095.0, 65535.0)


def nonfinite_count(x: torch.Tensor) -> tuple[int, tuple[int, ...] | None]:
    """How many values of ``x`` are NaN or inf, and the index of the first (None when there is none)."""
    bad = ~torch.isfinite(x)
    if not bool(bad.any()):
        return 0, None
    flat = int(torch.argmax(bad.flatten().to(torch.uint8)))
    index = []
    for size in reversed(x.shape):
        index.append(flat % size)
        flat //= size
    return int(bad.sum()), tuple(reversed(index))


def check_finite(x: torch.Tensor, what: str, fix: str, origin: tuple[int, int] = (0, 0)) -> None:
    """Refuse NaN or inf values in ``x`` (... x C x H x W), naming how many and where the first is.

    Args:
        x: the pixels.
        what: how the message names them (a path, ``y``).
        fix: what to do about it, in the caller's interface.
        origin: the row and column of ``x``'s first pixel in the whole image (for streamed blocks).
    """
    if not x.is_floating_point():
        return
    count, index = nonfinite_count(x)
    if not count:
        return
    row, col = index[-2] + origin[0], index[-1] + origin[1]
    band = f", band {index[-3] + 1}" if x.ndim >= 3 and x.shape[-3] > 1 else ""
    plural = "s" if count > 1 else ""
    raise RestoreError(f"{what}: {count} non-finite pixel value{plural} (NaN or inf), the first at row {row}, "
                       f"column {col}{band}; {fix}")


def check_unit_range(x: torch.Tensor, what: str, fix: str, noise_std: float = 0.0) -> None:
    """Refuse float pixels far outside [0, 1] (beyond [-1, 2], widened by 6 noise stds).

    Args:
        x: finite float pixels.
        what: how the message names them.
        fix: what to do about it; ``{scale}`` in it is replaced by a likely full-scale value.
        noise_std: the measurement's noise std in [0, 1] units.
    """
    if not x.is_floating_point() or x.numel() == 0:
        return
    lo, hi = float(x.amin()), float(x.amax())
    slack = NOISE_SIGMAS * max(float(noise_std), 0.0)
    if LOW - slack <= lo and hi <= HIGH + slack:
        return
    scale = next((s for s in FULL_SCALES if hi <= 1.5 * s), None)
    scale_text = f"{scale:g}" if scale is not None else f"{hi:.6g}"
    raise RestoreError(f"{what}: pixel values span [{lo:.4g}, {hi:.4g}], expected [0, 1] image units "
                       f"(noisy values may stray somewhat outside, not beyond [{LOW - slack:.3g}, {HIGH + slack:.3g}]); "
                       + fix.format(scale=scale_text))


def operator_noise_std(operator) -> float:
    """The largest noise std (image units) the operator's noise model gives a [0, 1] image."""
    std = float(getattr(operator, "sigma", 0.0) or 0.0)
    gain = getattr(getattr(operator, "noise", None), "gain", None)
    return (std**2 + float(gain)) ** 0.5 if gain else std
