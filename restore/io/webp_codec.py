"""WebP files encoded with Pillow: lossy at a quality, with alpha, EXIF, ICC profile and XMP in one pass.

(Decoding goes through OpenCV with the other 8-bit formats: ``restore.io.opencv_codec``.)
WebP holds 8-bit RGB(A) only: a gray image is stored as RGB.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from restore.errors import RestoreError
from restore.io.metadata import NO_METADATA, PhotoMetadata


def encode(p: Path, color: np.ndarray, alpha: np.ndarray | None, quality: int,
           metadata: PhotoMetadata = NO_METADATA) -> bytes:
    """Encode 8-bit RGB or gray samples (and an 8-bit alpha, or None) as a lossy WebP file's bytes."""
    rgb = np.repeat(color[:, :, None], 3, axis=2) if color.ndim == 2 else color
    if rgb.shape[2] != 3:
        raise RestoreError(f"{p}: WebP stores 1 (gray) or 3 (RGB) color channels, got {rgb.shape[2]}; write a .tif instead")
    samples = rgb if alpha is None else np.concatenate([rgb, alpha[:, :, None]], axis=2)
    blocks = {key: value for key, value in
              (("exif", metadata.exif), ("icc_profile", metadata.icc), ("xmp", metadata.xmp)) if value}
    buffer = io.BytesIO()
    try:
        Image.fromarray(np.ascontiguousarray(samples)).save(buffer, "WEBP", quality=quality, **blocks)
    except (OSError, ValueError) as exc:
        raise RestoreError(f"{p}: could not encode the image as WebP ({exc})") from None
    return buffer.getvalue()
