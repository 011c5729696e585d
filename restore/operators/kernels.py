"""Blur-kernel factories: Gaussian, linear motion, sensor MTF, .npy files and CLI specs.

Every kernel is a 2-D tensor of non-negative values that sum to 1, with an odd
size so that its centre is the middle pixel.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch

from restore.errors import RestoreError

# A side beyond this is a typo (gaussian:1e6), not a blur anyone means.
MAX_KERNEL_SIZE = 1025


def _positive(value: object, name: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RestoreError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(out) or out <= 0:
        raise RestoreError(f"{name} must be a finite number > 0, got {value!r}")
    return out


def gaussian_kernel(
    std: float, size: int | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """An isotropic Gaussian kernel.

    Args:
        std: standard deviation in pixels, > 0.
        size: odd side length; default ``2 * ceil(3 * std) + 1``.
        dtype: floating dtype of the result.

    Returns:
        A size x size tensor summing to 1.
    """
    std = _positive(std, "std")
    if size is None:
        size = 2 * math.ceil(3 * std) + 1
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise RestoreError(f"kernel size must be an odd integer >= 1, got {size!r}")
    if size > MAX_KERNEL_SIZE:
        raise RestoreError(f"kernel size {size} exceeds {MAX_KERNEL_SIZE} (std={std})")
    t = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-0.5 * (t / std) ** 2)
    k = torch.outer(g, g)
    return (k / k.sum()).to(dtype)


def _gaussian_response(std: float, freq: float) -> float:
    """Frequency response at ``freq`` (cycles/pixel) of a sampled, untruncated Gaussian."""
    radius = math.ceil(8 * std) + 2  # taps beyond 8 std weigh < exp(-32): nothing
    n = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (n / std) ** 2)
    return float((g * torch.cos(2 * math.pi * freq * n)).sum() / g.sum())


def _check_mtf(value: object) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise RestoreError(f"mtf_nyquist must be a number in (0, 1), got {value!r}")
    m = float(value)
    if not 0 < m < 1:  # also refuses NaN
        raise RestoreError(f"mtf_nyquist must be in (0, 1) (e.g. 0.15 for a Pleiades-class sensor), got {m}")
    return m


def _mtf_std(mtf_nyquist: float, factor: int = 1) -> float:
    """Std (pixels) of the sampled Gaussian whose MTF at the sensor's Nyquist is ``mtf_nyquist``.

    Solved by bisection, since the sampled kernel's response decreases
    monotonically from 1 (a delta) to 0 as its std grows. See ``mtf_psf``.

    Args:
        mtf_nyquist: MTF value at the sensor's Nyquist frequency, in (0, 1).
        factor: integer >= 1; the kernel's grid is ``factor`` times finer than the sensor's.
    """
    m = _check_mtf(mtf_nyquist)
    if isinstance(factor, bool) or not isinstance(factor, Integral) or factor < 1:
        raise RestoreError(f"factor must be an integer >= 1, got {factor!r}")
    freq = 0.5 / int(factor)
    lo, hi = 0.0, float(factor)
    while _gaussian_response(hi, freq) > m:
        lo, hi = hi, 2 * hi
    for _ in range(60):  # 2^-60 of the bracket: float64 precision
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _gaussian_response(mid, freq) > m else (lo, mid)
    return 0.5 * (lo + hi)


def mtf_psf(
    mtf_nyquist: float,
    size: int | None = None,
    dtype: torch.dtype = torch.float32,
    *,
    factor: int = 1,
) -> torch.Tensor:
    """The Gaussian PSF of a sensor specified by its MTF at Nyquist (0.15, 0.3...).

    A continuous Gaussian PSF of std s has MTF exp(-2 pi^2 s^2 f^2); setting it
    to m at Nyquist, f = 1/2 cycle/pixel, gives **s = sqrt(-2 ln m) / pi**
    (0.62 px for m = 0.15). Sampling that PSF on the sensor's own grid aliases,
    though: by Poisson summation the sampled kernel's response at Nyquist is
    sum_k G(1/2 - k) / sum_k G(k), and G(-1/2) folds onto G(1/2), so it is
    about **2 m**, not m. The kernel returned is therefore a sampled Gaussian
    whose std t is solved numerically so that its discrete response at Nyquist
    (along rows and along columns) is exactly m; to first order
    **t = sqrt(2 ln(2 / m)) / pi** (0.72 px for m = 0.15).

    With ``factor`` > 1 the kernel is meant for the high-resolution grid of a
    Blur-then-Decimate(factor) sensor model: Nyquist is then 0.5 / factor cycle
    per kernel pixel, aliasing is negligible, and t is about factor * s.

    Args:
        mtf_nyquist: MTF value m at the sensor's Nyquist frequency, 0 < m < 1.
        size: odd side length >= 3; default ``2 * ceil(4 * t) + 1`` (at least 3).
            A smaller side truncates the tails and raises the MTF slightly.
        dtype: floating dtype of the result.
        factor: integer >= 1, how many kernel pixels make one sensor pixel.

    Returns:
        A size x size symmetric tensor summing to 1.

    Example:
        >>> k = mtf_psf(0.15)  # Pleiades-class
        >>> k.shape
        torch.Size([7, 7])
        >>> nyquist = (-1.0) ** (torch.arange(7) - 3)  # the pattern +1 -1 +1 ... centred
        >>> round(float(k.sum(0) @ nyquist), 3)
        0.15
    """
    std = _mtf_std(mtf_nyquist, factor)
    if size is None:
        size = max(3, 2 * math.ceil(4 * std) + 1)
    if isinstance(size, bool) or not isinstance(size, int) or size < 3 or size % 2 == 0:
        raise RestoreError(f"MTF kernel size must be an odd integer >= 3, got {size!r}")
    if size > MAX_KERNEL_SIZE:
        raise RestoreError(f"kernel size {size} exceeds {MAX_KERNEL_SIZE} (mtf_nyquist={mtf_nyquist})")
    return gaussian_kernel(std, size, dtype)


def motion_kernel(
    length: float, angle_deg: float, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A straight motion-blur kernel: a centred segment rasterised with anti-aliasing.

    The segment is sampled densely and each sample is split bilinearly over its
    four neighbouring pixels, so sub-pixel lengths and any angle give a smooth,
    mass-preserving kernel.

    Args:
        length: segment length in pixels, >= 1.
        angle_deg: direction in degrees, counter-clockwise from the x axis
            (rows grow downwards, as in image coordinates).
        dtype: floating dtype of the result.

    Returns:
        An odd-sized square tensor summing to 1.
    """
    length = _positive(length, "motion length")
    if length < 1:
        raise RestoreError(f"motion length must be >= 1 pixel, got {length}")
    try:
        angle = math.radians(float(angle_deg))
    except (TypeError, ValueError):
        raise RestoreError(f"motion angle must be a number of degrees, got {angle_deg!r}") from None
    if not math.isfinite(angle):
        raise RestoreError(f"motion angle must be finite, got {angle_deg!r}")
    radius = math.ceil(length / 2)
    size = 2 * radius + 1
    if size > MAX_KERNEL_SIZE:
        raise RestoreError(f"motion length {length} gives a kernel wider than {MAX_KERNEL_SIZE}")
    n = max(2, math.ceil(16 * length))
    s = torch.linspace(-length / 2, length / 2, n, dtype=torch.float64)
    cols = radius + s * math.cos(angle)
    rows = radius - s * math.sin(angle)
    k = torch.zeros(size, size, dtype=torch.float64)
    r0, c0 = rows.floor(), cols.floor()
    fr, fc = rows - r0, cols - c0
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            # Endpoints at integer positions put zero weight one pixel outside: clamp them in.
            r = (r0 + dr).clamp(0, size - 1).long()
            c = (c0 + dc).clamp(0, size - 1).long()
            k.index_put_((r, c), wr * wc, accumulate=True)
    return (k / k.sum()).to(dtype)


def load_kernel(path: str | Path, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Load a 2-D non-negative kernel from a ``.npy`` file and normalise it to sum 1.

    An even side is padded with a zero row/column at the end, which keeps the
    centre at index ``size // 2``.
    """
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise RestoreError(f"kernel file must be a .npy file, got {str(path)!r}")
    if not path.is_file():
        raise RestoreError(f"kernel file not found: {str(path)!r}")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise RestoreError(f"cannot read kernel file {str(path)!r}: {exc}") from None
    if arr.ndim != 2 or arr.size == 0:
        raise RestoreError(f"kernel in {str(path)!r} must be a 2-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise RestoreError(f"kernel in {str(path)!r} must be real numbers, got dtype {arr.dtype}")
    k = torch.from_numpy(arr.astype(np.float64))
    if not torch.isfinite(k).all() or (k < 0).any() or k.sum() <= 0:
        raise RestoreError(
            f"kernel in {str(path)!r} must be finite, non-negative and not all zero"
        )
    pad_rows, pad_cols = 1 - k.shape[0] % 2, 1 - k.shape[1] % 2
    k = torch.nn.functional.pad(k, (0, pad_cols, 0, pad_rows))
    return (k / k.sum()).to(dtype)


def parse_kernel(spec: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Build a kernel from a CLI spec.

    Args:
        spec: ``gaussian:STD``, ``motion:LENGTH,ANGLE`` (degrees), ``mtf:M`` (a sensor PSF
            whose MTF at Nyquist is M, see ``mtf_psf``) or a path to ``FILE.npy``.
        dtype: floating dtype of the result.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise RestoreError(f"kernel spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec.lower().endswith(".npy"):
        return load_kernel(spec, dtype)
    kind, sep, args = spec.partition(":")
    kind = kind.strip().lower()
    expected = "expected gaussian:STD, motion:LENGTH,ANGLE, mtf:MTF_AT_NYQUIST or FILE.npy"
    if not sep or kind not in ("gaussian", "motion", "mtf"):
        raise RestoreError(f"bad kernel spec {spec!r}: {expected}")
    try:
        values = [float(v) for v in args.split(",")]
    except ValueError:
        raise RestoreError(f"bad kernel spec {spec!r}: {expected}") from None
    if kind == "gaussian" and len(values) == 1:
        return gaussian_kernel(values[0], dtype=dtype)
    if kind == "motion" and len(values) == 2:
        return motion_kernel(values[0], values[1], dtype=dtype)
    if kind == "mtf" and len(values) == 1:
        return mtf_psf(values[0], dtype=dtype)
    raise RestoreError(f"bad kernel spec {spec!r}: {expected}")
