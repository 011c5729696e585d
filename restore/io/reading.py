"""Reading image files: ``read_image`` (one file, checked) and ``list_images`` (a folder's images)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from restore.errors import RestoreError
from restore.io import opencv_codec, tiff_codec
from restore.io.arrays import from_numpy_image
from restore.io.formats import (
    IMAGE_EXTENSIONS,
    TIFF_EXTENSIONS,
    PathLike,
    bit_depth_of,
    check_readable,
    check_signature,
    check_value_range,
)
from restore.io.metadata import NO_METADATA, PhotoMetadata, read_metadata
from restore.io.orientation import orient
from restore.io.pixel_limit import MAX_PIXELS, check_max_pixels, check_pixel_count, header_size
from restore.pixel_values import check_finite, check_unit_range


@dataclass
class ImageData:
    """An image as read from disk.

    Attributes:
        pixels: float32 tensor 1 x C x H x W, color channels only, in [0, 1]
            (float TIFFs: values as stored).
        alpha: the alpha channel as the original H x W numpy array, or None.
        bit_depth: 8, 16, or 32 for float TIFFs.
        path: the file it came from.
        value_range: the stored value read as 1.0 when ``read_image`` was given one (write
            the result back with it to keep the input's units), else None.
        metadata: the file's EXIF (orientation 1: ``pixels`` are upright), ICC profile and XMP.
    """

    pixels: torch.Tensor
    alpha: np.ndarray | None
    bit_depth: int
    path: Path
    value_range: float | None = None  # the stored value that became 1.0, when one was given
    metadata: PhotoMetadata = NO_METADATA


def read_image(path: PathLike, *, value_range: float | None = None, max_pixels: float | None = MAX_PIXELS) -> ImageData:
    """Read a PNG, JPEG, TIFF or BMP image (8/16-bit, float TIFF; gray, RGB, +alpha).

    TIFF alpha is the extra sample flagged as alpha in the ExtraSamples tag;
    other extra samples are bands. Only the first TIFF page is read. A PNG,
    JPEG or WebP photo's EXIF orientation is applied: pixels (and alpha) come upright.

    Pixels are checked: NaN or inf values are refused (naming how many and the
    first one's place), and so is float data far outside [0, 1] (beyond [-1, 2],
    e.g. a float TIFF in 0-255) unless ``value_range`` says how to scale it.

    Args:
        path: the image file.
        value_range: the stored value that means full scale (read as 1.0): e.g. 4095
            for 12-bit data in a 16-bit file, 255 for a float TIFF in 0-255. Default:
            the type's maximum (255, 65535), 1.0 for floats.
        max_pixels: refuse images with more pixels than this, from the header and
            before decoding (None: no limit).

    Returns:
        An ``ImageData``; see its attributes for conventions.

    Raises:
        RestoreError: missing file, directory, unsupported or non-image file,
            truncated or corrupt file, unsupported sample type, too many pixels,
            non-finite pixels, float pixels out of range, a value range the type cannot hold.
    """
    p = Path(path)
    ext = check_readable(p)
    check_max_pixels(max_pixels)
    check_value_range(value_range)
    color, alpha, metadata = _decode(p, ext, max_pixels)
    bit_depth = bit_depth_of(p, color.dtype)
    if bit_depth == 32:
        color = color.astype(np.float32, copy=False)
    elif value_range is not None and value_range > np.iinfo(color.dtype).max:
        raise RestoreError(f"{p}: value_range={value_range:g} is beyond what its {bit_depth}-bit pixels can hold "
                           f"(at most {np.iinfo(color.dtype).max})")
    pixels = from_numpy_image(color, value_range)
    _check_pixels(p, pixels, value_range)
    return ImageData(pixels=pixels, alpha=alpha, bit_depth=bit_depth, path=p, value_range=value_range,
                     metadata=metadata)


def _decode(p: Path, ext: str, max_pixels: float | None) -> tuple[np.ndarray, np.ndarray | None, PhotoMetadata]:
    """(color samples, alpha or None, metadata) of a file whose extension is known, upright."""
    try:
        if ext in TIFF_EXTENSIONS:
            with open(p, "rb") as fh:
                check_signature(p, ext, fh.read(8))
            return tiff_codec.decode(p, max_pixels)  # tifffile reads only the parts it needs
        data = p.read_bytes()
        check_signature(p, ext, data[:8])
        size = header_size(p, ext, data)
        if size is not None:
            check_pixel_count(p, *size, 3, max_pixels)
        color, alpha = opencv_codec.decode(p, ext, data)
        metadata = read_metadata(ext, data)
        turn = metadata.orientation
        return orient(color, turn), None if alpha is None else orient(alpha, turn), metadata.upright()
    except OSError as exc:
        raise RestoreError(f"{p}: cannot read file ({exc.strerror or exc})") from None


def _check_pixels(p: Path, pixels: torch.Tensor, value_range: float | None) -> None:
    """Refuse NaN / inf pixels and values far outside [0, 1], saying what would fix them."""
    check_finite(pixels, str(p), "fix or mask them in the file first")
    if value_range is None:
        check_unit_range(pixels, str(p), "pass value_range={scale} (the value meaning full scale) to scale them")
    else:
        check_unit_range(pixels, str(p), f"value_range={value_range:g} is too small for them (try {{scale}} times larger)")


def list_images(folder: PathLike, *, recursive: bool = False) -> list[Path]:
    """Return the image files (png, jpg, jpeg, tif, tiff, bmp, webp) in a folder, sorted.

    ``recursive``: in its sub-folders too (hidden ones skipped). Hidden files are
    skipped; they include the temp files of an interrupted ``write_image``.
    """
    d = Path(folder)
    if not d.is_dir():
        raise RestoreError(f"{d}: not a folder" if d.exists() else f"{d}: folder not found")
    candidates = list(d.iterdir()) if not recursive else [Path(top) / name for top, _, names in _visible_walk(d)
                                                          for name in names]
    return sorted(f for f in candidates
                  if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".") and f.is_file())


def _visible_walk(d: Path):
    """``os.walk`` below ``d`` that does not enter hidden folders (``.git``, caches, thumbnails)."""
    for top, folders, names in os.walk(d):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        yield top, folders, names
