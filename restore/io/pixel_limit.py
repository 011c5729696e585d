"""The pixel limit of in-memory images, checked from a file's header before decoding.

A 431 KB PNG can claim 20000 x 20000 pixels: 4.8 GB as float RGB. Such a file is
refused from the size its header states, before any pixel is decoded; big
rasters are streamed instead (``restore.raster``).
"""
from __future__ import annotations

import struct
from pathlib import Path

from restore.errors import RestoreError

# 268 Mpx = 16384 x 16384.
MAX_PIXELS = 2**28


def header_size(p: Path, ext: str, data: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG, JPEG or BMP header without decoding (None: not found)."""
    if ext == ".png" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack_from(">II", data, 16)
        return h, w
    if ext == ".bmp" and len(data) >= 26:
        w, h = struct.unpack_from("<ii", data, 18)
        return abs(h), abs(w)  # a negative height means rows stored top-down
    if ext in (".jpg", ".jpeg"):
        return _jpeg_frame_size(data)
    return None


def _jpeg_frame_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the first start-of-frame marker, walking the marker segments."""
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            h, w = struct.unpack_from(">HH", data, pos + 5)
            return h, w
        pos += 2 + length
    return None


def check_pixel_count(p: Path, height: int, width: int, channels: int, max_pixels: float | None) -> None:
    """Refuse an image with more than ``max_pixels`` pixels (None: no limit), from its header's size."""
    if max_pixels is None or height * width <= max_pixels:
        return
    gigabytes = height * width * max(channels, 1) * 4 / 1e9
    raise RestoreError(
        f"{p}: {width} x {height} pixels ({height * width / 1e6:.0f} Mpx) is over the {max_pixels / 1e6:.0f} Mpx limit "
        f"for in-memory images (it would take about {gigabytes:.1f} GB as floats); pass max_pixels={height * width} "
        f"to read it anyway, or save it as a tiled GeoTIFF, which is streamed"
    )


def check_max_pixels(max_pixels: float | None) -> None:
    """Refuse a pixel limit that is not a number > 0 (None, no limit, is allowed)."""
    if max_pixels is not None and (isinstance(max_pixels, bool) or not max_pixels > 0):
        raise RestoreError(f"max_pixels must be a number > 0 (or None: no limit), got {max_pixels!r}")
