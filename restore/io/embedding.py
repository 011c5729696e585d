"""Photo metadata put into encoded JPEG and PNG bytes, the pixels' encoding untouched.

OpenCV writes the pixels (8 or 16 bits, its JPEG quality); the EXIF, ICC
profile and XMP blocks are then inserted as the formats' own segments and
chunks, so nothing is decoded or compressed twice.
"""
from __future__ import annotations

import struct
import zlib

from restore.io.formats import JPEG_EXTENSIONS, PNG_SIGNATURE
from restore.io.metadata import EXIF_HEADER, PhotoMetadata

_SEGMENT_MAX = 65533  # payload bytes one JPEG marker segment holds (its length field counts itself)
_ICC_HEADER = b"ICC_PROFILE\x00"
_ICC_CHUNK = _SEGMENT_MAX - len(_ICC_HEADER) - 2  # a profile is split over APP2 segments numbered 1..n
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_APP0, _APP1, _APP2 = b"\xff\xe0", b"\xff\xe1", b"\xff\xe2"


def embed(ext: str, encoded: bytes, metadata: PhotoMetadata) -> bytes:
    """``encoded`` (a whole JPEG or PNG file) with ``metadata``'s blocks added; other formats unchanged."""
    if not metadata:
        return encoded
    if ext in JPEG_EXTENSIONS:
        return _jpeg(encoded, metadata)
    if ext == ".png":
        return _png(encoded, metadata)
    return encoded


def _jpeg(encoded: bytes, m: PhotoMetadata) -> bytes:
    segments = []
    if m.exif and len(EXIF_HEADER) + len(m.exif) <= _SEGMENT_MAX:  # a larger EXIF block has no standard place
        segments.append(_segment(_APP1, EXIF_HEADER + m.exif))
    if m.xmp and len(_XMP_HEADER) + len(m.xmp) <= _SEGMENT_MAX:  # extended XMP is not written
        segments.append(_segment(_APP1, _XMP_HEADER + m.xmp))
    if m.icc:
        chunks = [m.icc[i:i + _ICC_CHUNK] for i in range(0, len(m.icc), _ICC_CHUNK)]
        if len(chunks) <= 255:
            segments += [_segment(_APP2, _ICC_HEADER + bytes([k + 1, len(chunks)]) + chunk)
                         for k, chunk in enumerate(chunks)]
    at = 2  # after the start-of-image marker, and after a JFIF APP0 segment when there is one
    if encoded[2:4] == _APP0:
        at += 2 + struct.unpack_from(">H", encoded, 4)[0]
    return encoded[:at] + b"".join(segments) + encoded[at:]


def _segment(marker: bytes, payload: bytes) -> bytes:
    return marker + struct.pack(">H", len(payload) + 2) + payload


def _png(encoded: bytes, m: PhotoMetadata) -> bytes:
    chunks = []
    if m.icc:  # iCCP: profile name, compression method 0, zlib data; it must come before the image data
        chunks.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(m.icc)))
    if m.exif:
        chunks.append(_chunk(b"eXIf", m.exif))
    if m.xmp:  # iTXt: keyword, uncompressed, no language, no translated keyword
        chunks.append(_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + m.xmp))
    ihdr_end = len(PNG_SIGNATURE) + 12 + struct.unpack_from(">I", encoded, len(PNG_SIGNATURE))[0]
    return encoded[:ihdr_end] + b"".join(chunks) + encoded[ihdr_end:]


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
