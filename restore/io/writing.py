"""Writing image files: ``check_output`` (can this path hold the result?) and ``write_image`` (atomic, never over an input)."""
from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from restore.errors import RestoreError
from restore.io import opencv_codec, tiff_codec, webp_codec
from restore.io.arrays import to_numpy_image
from restore.io.atomic import atomic_write
from restore.io.embedding import embed
from restore.io.formats import (
    DEFAULT_QUALITY,
    EIGHT_BIT_EXTENSIONS,
    JPEG_EXTENSIONS,
    TIFF_EXTENSIONS,
    PathLike,
    check_output_extension,
    check_value_range,
    depth_dtype,
)
from restore.io.metadata import NO_METADATA, PhotoMetadata


def check_output(path: PathLike, bit_depth: int, *, channels: int | None = None, value_range: float | None = None) -> int:
    """Refuse what ``path``'s format cannot hold (before any work); return the depth it will be written at.

    Args:
        path: the output file.
        bit_depth: 8, 16 or 32 (float; TIFF only).
        channels: colour channels of the result, when known (PNG, JPEG and BMP hold 1 or 3).
        value_range: the stored value of 1.0, when not the type's maximum.
    """
    p = Path(path)
    ext = check_output_extension(p)
    depth = _output_depth(p, ext, bit_depth)
    if channels is not None and ext not in TIFF_EXTENSIONS:
        opencv_codec.check_channels(p, ext, channels)
    if value_range is not None:
        check_value_range(value_range)
        if depth != 32 and value_range > np.iinfo(depth_dtype(depth)).max:
            raise RestoreError(f"{p}: {depth}-bit pixels cannot hold value_range={value_range:g} "
                               f"(at most {np.iinfo(depth_dtype(depth)).max}); write a 16-bit PNG or a TIFF")
    return depth


def _output_depth(p: Path, ext: str, bit_depth: int) -> int:
    if bit_depth not in (8, 16, 32):
        raise RestoreError(f"bit_depth must be 8, 16 or 32, got {bit_depth!r}")
    if ext in EIGHT_BIT_EXTENSIONS:
        return 8  # these formats hold 8 bits only; higher depths fall back quietly
    if ext == ".png" and bit_depth == 32:
        raise RestoreError(f"{p}: PNG holds 8 or 16 bits: write a .tif for float (32-bit) output, or pass bit_depth=16")
    return bit_depth


def write_image(
    path: PathLike,
    pixels: torch.Tensor,
    *,
    bit_depth: int = 8,
    alpha: np.ndarray | None = None,
    overwrite: bool = False,
    protect: Iterable[PathLike] = (),
    value_range: float | None = None,
    quality: int | None = None,
    metadata: PhotoMetadata | None = NO_METADATA,
) -> Path:
    """Write a 1 x C x H x W image in [0, 1] atomically; format from the extension.

    Pixels are clipped to [0, 1] and rounded to 8 or 16 bits (32: float32
    TIFF, values as given). JPEG, WebP and BMP are 8-bit only: other depths fall
    back to 8 without error. JPEG has no alpha: it is dropped with a warning.
    With ``value_range``, 1.0 is written as that value (the units the input was
    read in, e.g. 4095 for 12-bit data in 16 bits) instead of the type's maximum.

    Args:
        path: output file: .png, .jpg/.jpeg, .tif/.tiff, .webp or .bmp.
        pixels: color channels, 1 x C x H x W (or C x H x W) float tensor.
        bit_depth: 8, 16 or 32 (TIFF only).
        alpha: H x W alpha array, converted to the output depth if needed.
        overwrite: replace an existing file at ``path``.
        protect: paths never to write over, whatever ``overwrite`` says (the inputs).
        value_range: the stored value of 1.0 (default: 255 / 65535 for integers, 1.0 for floats).
        quality: JPEG and WebP quality, 1-100 (default 95); lossless formats ignore it.
        metadata: EXIF, ICC profile and XMP to embed (PNG, JPEG, WebP; TIFF: ICC and XMP; BMP: none).
            Its EXIF orientation should say how ``pixels`` are stored (``read_image`` gives 1).

    Returns:
        The path written.

    Raises:
        RestoreError: unknown extension, existing or protected output,
            unsupported channel count, NaN pixels, or a write failure.
    """
    p = Path(path)
    ext = check_output_extension(p)
    _check_not_protected(p, protect)
    if p.is_dir():
        raise RestoreError(f"{p}: is a directory, expected an output file path")
    if p.exists() and not overwrite:
        raise RestoreError(f"{p}: already exists; pass overwrite=True to replace it")
    depth = check_output(p, bit_depth, value_range=value_range)
    quality = _checked_quality(quality)
    color = to_numpy_image(pixels, depth_dtype(depth), value_range)
    if alpha is not None and ext in JPEG_EXTENSIONS:
        warnings.warn(f"{p}: JPEG has no alpha channel; the alpha channel is dropped", stacklevel=2)
        alpha = None
    if alpha is not None:
        alpha = _convert_alpha(alpha, depth, color.shape[:2])
    stored_channels = 3 if ext == ".webp" else 1 if color.ndim == 2 else color.shape[2]  # WebP stores gray as RGB
    metadata = (metadata or NO_METADATA).for_channels(stored_channels)
    if ext in TIFF_EXTENSIONS:
        tags = {"metadata": metadata} if metadata else {}  # the plain call when there is nothing to tag
        atomic_write(p, lambda fh: tiff_codec.write(fh, color, alpha, **tags))
        return p
    if ext == ".webp":
        encoded = webp_codec.encode(p, color, alpha, quality, metadata)
    else:
        encoded = embed(ext, opencv_codec.encode(p, ext, color, alpha, quality), metadata)
    atomic_write(p, lambda fh: fh.write(encoded))
    return p


def _checked_quality(quality: int | None) -> int:
    if quality is None:
        return DEFAULT_QUALITY
    if isinstance(quality, bool) or not isinstance(quality, numbers.Integral) or not 1 <= quality <= 100:
        raise RestoreError(f"quality must be an integer from 1 to 100, got {quality!r}")
    return int(quality)


def _check_not_protected(p: Path, protect: Iterable[PathLike]) -> None:
    if isinstance(protect, (str, os.PathLike)):
        protect = [protect]  # a single path, not an iterable of characters
    target = p.resolve()
    for q in protect:
        q = Path(q)
        same = q.resolve() == target or (p.exists() and q.exists() and os.path.samefile(p, q))
        if same:
            raise RestoreError(f"{p}: refusing to write over an input image")


def _convert_alpha(alpha: np.ndarray, bit_depth: int, shape: tuple[int, int]) -> np.ndarray:
    """Return ``alpha`` in the output dtype: unchanged when the depth already matches."""
    if not isinstance(alpha, np.ndarray) or alpha.shape != shape:
        got = alpha.shape if isinstance(alpha, np.ndarray) else type(alpha).__name__
        raise RestoreError(f"alpha must be a numpy array of shape {shape} (H, W), got {got}")
    target = depth_dtype(bit_depth)
    if alpha.dtype == target:
        return alpha
    if alpha.dtype in (np.uint8, np.uint16):
        unit = alpha / float(np.iinfo(alpha.dtype).max)
    elif np.issubdtype(alpha.dtype, np.floating):
        unit = np.clip(alpha.astype(np.float64), 0.0, 1.0)
    else:
        raise RestoreError(f"alpha must be uint8, uint16 or float, got {alpha.dtype}")
    if bit_depth == 32:
        return unit.astype(np.float32)
    return np.rint(unit * np.iinfo(target).max).astype(target)
