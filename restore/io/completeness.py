"""Is a PNG, JPEG, BMP or WebP file whole? Checked on its bytes, before decoding.

OpenCV decodes a truncated file partially (rows of grey) or not at all, without
saying which, so completeness is checked here rather than trusted to the decoder.
(TIFF completeness needs the parsed page: ``restore.io.tiff_codec``.)
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

from restore.errors import RestoreError
from restore.io.formats import PNG_SIGNATURE


def check_complete(p: Path, ext: str, data: bytes) -> None:
    """Refuse a truncated or corrupt PNG, JPEG, BMP or WebP file (``ext``: its lower-case extension)."""
    checks = {".png": check_png_complete, ".bmp": check_bmp_complete, ".webp": check_webp_complete}
    checks.get(ext, check_jpeg_complete)(p, data)


def check_png_complete(p: Path, data: bytes) -> None:
    """Walk the PNG chunks, checking CRCs, up to IEND."""
    view = memoryview(data)
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, tag = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            break
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise RestoreError(f"{p}: corrupt PNG (bad checksum in {tag.decode('latin-1')} chunk)")
        if tag == b"IEND":
            return
        pos = end
    raise RestoreError(f"{p}: truncated PNG (file ends before the IEND chunk)")


def check_jpeg_complete(p: Path, data: bytes) -> None:
    """Require an end-of-image marker after the last start-of-scan marker.

    Inside entropy-coded data every 0xFF byte is stuffed (FF 00), so FF D9
    after the last FF DA only occurs if the final scan was written completely.
    cv2/libjpeg would otherwise return a truncated JPEG padded with grey.
    """
    sos = data.rfind(b"\xff\xda")
    if sos < 0 or data.find(b"\xff\xd9", sos) < 0:
        raise RestoreError(f"{p}: truncated or corrupt JPEG (no end-of-image marker after the image data)")


def check_bmp_complete(p: Path, data: bytes) -> None:
    """Require the whole header and as many bytes as the header's file size."""
    size = struct.unpack_from("<I", data, 2)[0] if len(data) >= 6 else 0
    if len(data) < 54 or size > len(data):
        raise RestoreError(f"{p}: truncated BMP ({len(data)} bytes, header says {size})")


def check_webp_complete(p: Path, data: bytes) -> None:
    """Require the RIFF header's "WEBP" form and as many bytes as its size says."""
    if len(data) < 16 or data[8:12] != b"WEBP":
        raise RestoreError(f"{p}: not a WebP image (a RIFF file of another kind)")
    size = struct.unpack_from("<I", data, 4)[0] + 8
    if size > len(data):
        raise RestoreError(f"{p}: truncated WebP ({len(data)} bytes, header says {size})")
