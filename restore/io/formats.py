"""The image formats ``restore.io`` reads and writes: extensions, file signatures, names.

Also the checks every read starts with: the path exists, is a file with a known
extension, and its first bytes are that format's signature.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from restore.errors import RestoreError

PathLike = str | os.PathLike
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
TIFF_EXTENSIONS = (".tif", ".tiff")
JPEG_EXTENSIONS = (".jpg", ".jpeg")
LOSSY_EXTENSIONS = (*JPEG_EXTENSIONS, ".webp")  # the formats a quality setting applies to
EIGHT_BIT_EXTENSIONS = (*JPEG_EXTENSIONS, ".bmp", ".webp")  # formats that hold 8 bits per sample only
DEFAULT_QUALITY = 95  # JPEG and WebP quality, 1-100, when none is given
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # little / big endian, classic / BigTIFF
_SIGNATURES = {
    ".png": (PNG_SIGNATURE,),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".tif": _TIFF_SIGNATURES,
    ".tiff": _TIFF_SIGNATURES,
    ".bmp": (b"BM",),
    ".webp": (b"RIFF",),  # RIFF, then the size, then "WEBP" (checked with the file's completeness)
}
FORMAT_NAME = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
               ".webp": "WebP"}


def check_readable(p: Path) -> str:
    """Return the lower-case extension, or raise for a missing / unusable path."""
    if not p.exists():
        raise RestoreError(f"{p}: file not found")
    if p.is_dir():
        raise RestoreError(f"{p}: is a directory, expected an image file")
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise RestoreError(
            f"{p}: unsupported image format {ext or '(no extension)'}; expected one of {', '.join(IMAGE_EXTENSIONS)}"
        )
    return ext


def check_signature(p: Path, ext: str, head: bytes) -> None:
    """Refuse a file whose first bytes are not its extension's format (an empty file, a renamed file)."""
    if not head:
        raise RestoreError(f"{p}: file is empty")
    if not any(head.startswith(m) for m in _SIGNATURES[ext]):
        raise RestoreError(f"{p}: not a {FORMAT_NAME[ext]} image (unrecognised file header)")


def check_output_extension(p: Path) -> str:
    """Return the lower-case extension of an output path, or raise when no format goes by it."""
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise RestoreError(f"{p}: unknown output format {ext or '(no extension)'}; use .png, .jpg, .tif, .webp or .bmp")
    return ext


def depth_dtype(bit_depth: int) -> np.dtype:
    """The numpy sample type a file of ``bit_depth`` (8, 16, 32 = float) stores."""
    return np.dtype({8: np.uint8, 16: np.uint16, 32: np.float32}[bit_depth])


def bit_depth_of(p: Path, dtype: np.dtype) -> int:
    """The bit depth (8, 16, 32 = float) of decoded samples, refusing other sample types."""
    if dtype == np.uint8:
        return 8
    if dtype == np.uint16:
        return 16
    if np.issubdtype(dtype, np.floating):
        return 32
    raise RestoreError(f"{p}: unsupported sample type {dtype}; expected uint8, uint16 or float")


def check_value_range(value_range: float | None) -> None:
    """Refuse a ``value_range`` (the stored value of 1.0) that is not a finite number > 0; None is the default."""
    if value_range is not None and (isinstance(value_range, bool) or not 0 < value_range < float("inf")):
        raise RestoreError(f"value_range must be a number > 0, got {value_range!r}")
