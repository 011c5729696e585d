"""Read and write PNG, JPEG, TIFF, WebP and BMP images as float tensors in [0, 1].

Conventions:
    * Pixels are float32 tensors of shape 1 x C x H x W holding the color (or
      band) channels only: C = 1 for gray, 3 for RGB (never BGR), any C for
      multi-band TIFF. Integer images are divided by 255 (8-bit) or 65535
      (16-bit); float TIFFs keep their values as stored (``bit_depth`` 32).
    * The alpha channel, when there is one, is not restored: it is carried
      through untouched as the original integer H x W numpy array.
    * Writes are atomic (temp file in the same folder, then ``os.replace``),
      never overwrite an input, and skip existing outputs unless asked.
    * A photo's EXIF orientation is applied on read; its EXIF (orientation
      reset to 1), ICC profile and XMP come with it (``ImageData.metadata``)
      and are embedded again by ``write_image(..., metadata=...)``.

The package's modules, one concept each: ``formats`` (extensions, signatures),
``arrays`` (numpy <-> torch), ``pixel_limit`` (sizes from headers),
``completeness`` (truncated files), ``opencv_codec`` (PNG, JPEG, BMP),
``png_gray_alpha``, ``tiff_codec``, ``webp_codec``, ``decoder_messages``,
``metadata`` (EXIF, ICC, XMP), ``orientation``, ``embedding`` (metadata into
encoded files), ``atomic`` (temp files, renames, leftovers), ``reading`` and ``writing``. Import from
``restore.io`` itself: the names below are its interface.

Example:
    >>> img = read_image("in.png")                       # doctest: +SKIP
    >>> write_image("out.png", img.pixels, bit_depth=img.bit_depth,
    ...             alpha=img.alpha, protect=[img.path])  # doctest: +SKIP
"""
from __future__ import annotations

from restore.io.arrays import from_numpy_image, to_numpy_image
from restore.io.atomic import TEMP_MARK, atomic_write, glob_escape, remove_stale_temps, stale_temps, temp_path
from restore.io.formats import IMAGE_EXTENSIONS, PathLike
from restore.io.metadata import NO_METADATA, PhotoMetadata
from restore.io.pixel_limit import MAX_PIXELS, check_pixel_count
from restore.io.reading import ImageData, list_images, read_image
from restore.io.writing import check_output, write_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "NO_METADATA",
    "TEMP_MARK",
    "ImageData",
    "PathLike",
    "PhotoMetadata",
    "atomic_write",
    "check_output",
    "check_pixel_count",
    "from_numpy_image",
    "glob_escape",
    "list_images",
    "read_image",
    "remove_stale_temps",
    "stale_temps",
    "temp_path",
    "to_numpy_image",
    "write_image",
]
