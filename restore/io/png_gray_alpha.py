"""A gray + alpha PNG encoder (PNG color type 4), which OpenCV cannot write: it writes BGRA instead."""
from __future__ import annotations

import struct
import zlib

import numpy as np

from restore.io.formats import PNG_SIGNATURE

_GRAY_ALPHA = 4  # PNG IHDR color type
_UP_FILTER = 2  # PNG row filter type
_MAX_CHUNK = 1 << 30  # PNG chunks are limited to 2**31 - 1 bytes


def encode_png_gray_alpha(gray: np.ndarray, alpha: np.ndarray) -> bytes:
    """Encode H x W gray and alpha samples (both uint8 or both uint16) as a PNG file's bytes."""
    h, w = gray.shape
    pixels = np.stack([gray, alpha], axis=-1).astype(f">u{gray.dtype.itemsize}")  # PNG is big-endian
    raw = pixels.view(np.uint8).reshape(h, -1)
    filtered = raw.copy()
    filtered[1:] -= raw[:-1]  # "Up" filter (wraps mod 256): compresses much better than none
    rows = np.concatenate([np.full((h, 1), _UP_FILTER, np.uint8), filtered], axis=1)
    compressed = zlib.compress(rows.tobytes(), 6)
    ihdr = struct.pack(">IIBBBBB", w, h, gray.dtype.itemsize * 8, _GRAY_ALPHA, 0, 0, 0)
    idat = b"".join(
        _chunk(b"IDAT", compressed[i : i + _MAX_CHUNK]) for i in range(0, max(len(compressed), 1), _MAX_CHUNK)
    )
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + idat + _chunk(b"IEND", b"")


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
