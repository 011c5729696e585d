"""TIFF files (8/16-bit, float, any number of bands, + alpha) read and written with tifffile.

Only the first page is read: a GeoTIFF's full-resolution raster. Alpha is the
extra sample flagged as alpha in the ExtraSamples tag; other extra samples are bands.
A photo's ICC profile and XMP travel in their own tags; its EXIF (a sub-IFD
tifffile does not write) and its orientation tag are left alone.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile

from restore.errors import RestoreError
from restore.io.decoder_messages import first_line
from restore.io.metadata import NO_METADATA, PhotoMetadata
from restore.io.pixel_limit import check_pixel_count

_ALPHA_EXTRASAMPLES = (1, 2)  # TIFF ExtraSamples: associated / unassociated alpha
_UNASSOCIATED_ALPHA = 2
_UNSPECIFIED_SAMPLE = 0
_PALETTE = 3  # TIFF Photometric: indexed color
_ICC_TAG, _XMP_TAG = 34675, 700  # InterColorProfile, XMLPacket
_BYTE = 1  # TIFF field type of the XMP packet


def decode(p: Path, max_pixels: float | None = None) -> tuple[np.ndarray, np.ndarray | None, PhotoMetadata]:
    """Read the first page of a TIFF into (channels-last color bands, alpha or None, its ICC profile and XMP)."""
    try:
        with _quiet_tifffile(), tifffile.TiffFile(p) as tif:
            page = tif.pages[0]
            if int(page.photometric) == _PALETTE:
                raise RestoreError(f"{p}: palette (indexed-color) TIFFs are not supported; convert to RGB")
            shape = dict(zip(page.axes, page.shape))
            check_pixel_count(p, shape.get("Y", 1), shape.get("X", 1), shape.get("S", 1), max_pixels)
            _check_complete(p, page, p.stat().st_size)
            arr = page.asarray()
            return (*_split_alpha(p, page, arr), _metadata(page))
    except RestoreError:
        raise
    except Exception as exc:  # tifffile raises many types for bad files
        raise RestoreError(f"{p}: corrupt or unsupported TIFF ({type(exc).__name__}: {first_line(exc)})") from None


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """tifffile logs a warning line for some bad headers before raising: the error says it instead."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_complete(p: Path, page: tifffile.TiffPage, size: int) -> None:
    ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts) if n]
    if not ends or max(ends) > size:
        raise RestoreError(f"{p}: truncated TIFF (image data extends past the end of the file)")


def _metadata(page: tifffile.TiffPage) -> PhotoMetadata:
    icc, xmp = (page.tags.get(tag) for tag in (_ICC_TAG, _XMP_TAG))
    found = [bytes(t.value) if t is not None and isinstance(t.value, (bytes, bytearray)) and t.value else None
             for t in (icc, xmp)]
    return PhotoMetadata(icc=found[0], xmp=found[1])


def _split_alpha(p: Path, page: tifffile.TiffPage, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Return channels-last color bands and the alpha band flagged by ExtraSamples."""
    axes = page.axes
    if axes == "SYX":
        arr = np.moveaxis(arr, 0, -1)
    elif axes not in ("YX", "YXS"):
        raise RestoreError(f"{p}: unsupported TIFF layout {axes!r}; expected a single 2-D image (YX, YXS or SYX)")
    if arr.ndim == 2:
        return arr, None
    extras = tuple(int(e) for e in (page.extrasamples or ()))
    first_extra = arr.shape[2] - len(extras)
    alpha_at = [first_extra + i for i, e in enumerate(extras) if e in _ALPHA_EXTRASAMPLES]
    if not alpha_at:
        return np.ascontiguousarray(arr), None
    k = alpha_at[0]
    color = np.delete(arr, k, axis=2)
    color = color[:, :, 0] if color.shape[2] == 1 else color
    return np.ascontiguousarray(color), np.ascontiguousarray(arr[:, :, k])


def write(fh: BinaryIO, color: np.ndarray, alpha: np.ndarray | None, metadata: PhotoMetadata = NO_METADATA) -> None:
    """Write H x W (x C) samples, and alpha (same dtype) flagged as such, as a zlib-compressed TIFF.

    ``metadata``'s ICC profile and XMP are written in their tags (its EXIF is not).
    """
    channels = 1 if color.ndim == 2 else color.shape[2]
    data = color if color.ndim == 3 else color[:, :, None]
    extrasamples: tuple[int, ...] = ()
    if alpha is not None:
        data = np.concatenate([data, alpha[:, :, None]], axis=2)
    photometric = "rgb" if channels == 3 else "minisblack"
    n_extra = data.shape[2] - (3 if channels == 3 else 1)
    if n_extra:
        # Bands beyond the photometric ones are "unspecified"; alpha, last, is flagged as such.
        n_bands = n_extra - (alpha is not None)
        extrasamples = (_UNSPECIFIED_SAMPLE,) * n_bands + ((_UNASSOCIATED_ALPHA,) if alpha is not None else ())
    if data.shape[2] == 1:
        data = data[:, :, 0]
    xmp = [(_XMP_TAG, _BYTE, len(metadata.xmp), metadata.xmp, True)] if metadata.xmp else []
    tifffile.imwrite(
        fh, data, photometric=photometric, planarconfig="contig",
        extrasamples=extrasamples or None, compression="zlib", iccprofile=metadata.icc, extratags=xmp,
    )
