"""Blur-kernel factories: Gaussian, linear motion, .npy files and CLI specs.

Every kernel is a 2-D tensor of non-negative values that sum to 1, with an odd
size so that its centre is the middle pixel.
"""
from __future__ import annotations

import math
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
        spec: ``gaussian:STD``, ``motion:LENGTH,ANGLE`` (degrees) or a path to ``FILE.npy``.
        dtype: floating dtype of the result.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise RestoreError(f"kernel spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec.lower().endswith(".npy"):
        return load_kernel(spec, dtype)
    kind, sep, args = spec.partition(":")
    kind = kind.strip().lower()
    expected = "expected gaussian:STD, motion:LENGTH,ANGLE or FILE.npy"
    if not sep or kind not in ("gaussian", "motion"):
        raise RestoreError(f"bad kernel spec {spec!r}: {expected}")
    try:
        values = [float(v) for v in args.split(",")]
    except ValueError:
        raise RestoreError(f"bad kernel spec {spec!r}: {expected}") from None
    if kind == "gaussian" and len(values) == 1:
        return gaussian_kernel(values[0], dtype=dtype)
    if kind == "motion" and len(values) == 2:
        return motion_kernel(values[0], values[1], dtype=dtype)
    raise RestoreError(f"bad kernel spec {spec!r}: {expected}")
