"""PNG, JPEG and BMP files decoded and encoded with OpenCV, in RGB order (and WebP decoded).

OpenCV works in BGR(A); these functions take and give RGB, gray stays gray
(OpenCV expands gray + alpha PNGs to BGRA), and the alpha channel is split off.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from restore.errors import RestoreError
from restore.io.completeness import check_complete
from restore.io.decoder_messages import decoder_messages, first_line
from restore.io.formats import DEFAULT_QUALITY, FORMAT_NAME, JPEG_EXTENSIONS
from restore.io.png_gray_alpha import encode_png_gray_alpha

_PNG_GRAY_TYPES = (0, 4)  # PNG IHDR color types: gray, gray + alpha


def decode(p: Path, ext: str, data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a whole PNG, JPEG or BMP file's bytes into (color channels, alpha or None)."""
    check_complete(p, ext, data)
    # imdecode on bytes read by Python (same decoder as cv2.imread with
    # IMREAD_UNCHANGED) also works for non-ASCII paths on every OS.
    try:
        with decoder_messages() as messages:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise RestoreError(f"{p}: corrupt or unsupported {FORMAT_NAME[ext]} image ({first_line(exc)})") from None
    warning = next((m for m in messages() if "corrupt" in m.lower() or "premature" in m.lower()), None)
    if warning is not None:
        # libjpeg decodes damaged data into garbage with only a warning on stderr: refuse it instead.
        raise RestoreError(f"{p}: corrupt {FORMAT_NAME[ext]} data ({warning.strip().rstrip('.')})")
    if img is None:
        raise RestoreError(f"{p}: corrupt or unsupported {FORMAT_NAME[ext]} image (decoder failed)")
    if img.ndim == 2:
        return img, None
    alpha = np.ascontiguousarray(img[:, :, 3]) if img.shape[2] == 4 else None
    if ext == ".png" and _png_color_type(data) in _PNG_GRAY_TYPES:
        # cv2 expands gray + alpha PNGs to BGRA; keep them gray.
        return np.ascontiguousarray(img[:, :, 0]), alpha
    return np.ascontiguousarray(img[:, :, 2::-1]), alpha


def _png_color_type(data: bytes) -> int:
    # IHDR is always the first chunk: signature(8) + length(4) + "IHDR"(4) + w(4) + h(4) + depth(1).
    return data[25] if len(data) > 25 else -1


def check_channels(p: Path, ext: str, channels: int) -> None:
    """Refuse a channel count PNG, JPEG and BMP cannot store (they hold gray or RGB)."""
    if channels not in (1, 3):
        raise RestoreError(
            f"{p}: {FORMAT_NAME[ext]} stores 1 (gray) or 3 (RGB) color channels, got {channels}; write a .tif instead"
        )


def encode(p: Path, ext: str, color: np.ndarray, alpha: np.ndarray | None, quality: int = DEFAULT_QUALITY) -> bytes:
    """Encode RGB or gray samples (and an alpha of the same dtype, or None) as a PNG, JPEG or BMP file's bytes.

    ``quality`` (1-100) is JPEG's; PNG and BMP are lossless.
    """
    channels = 1 if color.ndim == 2 else color.shape[2]
    check_channels(p, ext, channels)
    if ext == ".png" and channels == 1 and alpha is not None:
        return encode_png_gray_alpha(color, alpha)
    if channels == 1 and alpha is not None:  # BMP: no gray + alpha, store as BGRA
        color = np.repeat(color[:, :, None], 3, axis=2)
        channels = 3
    bgr = color if channels == 1 else color[:, :, ::-1]
    if alpha is not None:
        bgr = np.concatenate([bgr, alpha[:, :, None]], axis=2)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext in JPEG_EXTENSIONS else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(bgr), params)
    if not ok:
        raise RestoreError(f"{p}: OpenCV could not encode the image as {FORMAT_NAME[ext]}")
    return buf.tobytes()
