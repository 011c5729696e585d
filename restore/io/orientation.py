"""EXIF orientation: read from an EXIF block, applied to decoded samples, reset once applied.

Cameras store a portrait photo as landscape pixels plus an orientation tag
(EXIF tag 274) saying how to turn them. OpenCV's unchanged mode ignores the
tag, so a restored portrait would come out lying on its side; the reader turns
the pixels upright instead, and the EXIF written with the result says 1 (as stored).
"""
from __future__ import annotations

import struct

import numpy as np

ORIENTATION_TAG = 0x0112
UPRIGHT = 1
_SHORT = 3  # TIFF field type of the orientation value
_ENTRY = 12  # bytes per IFD entry: tag, type, count, value


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (H x W or H x W x C, as stored) turned upright for EXIF ``orientation`` 1-8."""
    turns = {
        2: lambda a: a[:, ::-1],                     # mirrored left-right
        3: lambda a: a[::-1, ::-1],                  # upside down
        4: lambda a: a[::-1],                        # mirrored top-bottom
        5: lambda a: a.swapaxes(0, 1),               # transposed
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],      # stored turned 90 degrees anticlockwise
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),   # transversed
        8: lambda a: a.swapaxes(0, 1)[::-1],         # stored turned 90 degrees clockwise
    }
    turn = turns.get(orientation)
    return array if turn is None else np.ascontiguousarray(turn(array))


def exif_orientation(exif: bytes | None) -> int:
    """The orientation an EXIF block (TIFF structure, no ``Exif`` header) states; 1 when none or unreadable."""
    at = _orientation_offset(exif)
    if at is None:
        return UPRIGHT
    value = struct.unpack_from(_order(exif) + "H", exif, at)[0]
    return value if 1 <= value <= 8 else UPRIGHT


def reset_orientation(exif: bytes) -> bytes:
    """``exif`` with its orientation set to 1, every other byte kept (maker notes and thumbnails included)."""
    at = _orientation_offset(exif)
    if at is None:
        return exif
    return exif[:at] + struct.pack(_order(exif) + "H", UPRIGHT) + exif[at + 2:]


def _order(exif: bytes) -> str:
    return "<" if exif[:2] == b"II" else ">"


def _orientation_offset(exif: bytes | None) -> int | None:
    """Where the orientation's value sits in IFD0 (None: no such tag, or not a TIFF-structured block)."""
    if not exif or len(exif) < 8 or exif[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    order = _order(exif)
    ifd = struct.unpack_from(order + "I", exif, 4)[0]
    if ifd + 2 > len(exif):
        return None
    count = struct.unpack_from(order + "H", exif, ifd)[0]
    for k in range(count):
        entry = ifd + 2 + k * _ENTRY
        if entry + _ENTRY > len(exif):
            return None
        tag, kind = struct.unpack_from(order + "HH", exif, entry)
        if tag == ORIENTATION_TAG:
            return entry + 8 if kind == _SHORT else None
    return None
