"""Writing one restored image with what goes beside it: its alpha, its uncertainty map, its posterior samples."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from restore.errors import RestoreError
from restore.io import NO_METADATA, ImageData, write_image
from restore.restorers.base import Restoration


def std_map_path(std_map: Path, image: Path, many: bool) -> Path:
    """Where the std map of ``image`` goes: ``std_map`` itself, or inside it for many inputs."""
    return std_map / f"{image.stem}_std.tif" if many else std_map


def sample_paths(dst: Path, count: int) -> list[Path]:
    """``<stem>_sample1<ext>`` ... beside the output."""
    return [dst.with_name(f"{dst.stem}_sample{k + 1}{dst.suffix}") for k in range(count)]


def resized_alpha(image: ImageData, shape: tuple[int, int]) -> np.ndarray | None:
    """The input's alpha, untouched when the size is kept, bicubically resized otherwise."""
    if image.alpha is None or tuple(image.alpha.shape[:2]) == tuple(shape):
        return image.alpha
    return cv2.resize(image.alpha, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def write_result(dst: Path, result: Restoration, image: ImageData, *, bit_depth: int, overwrite: bool,
                 protect: list[Path], std_path: Path | None = None, samples: int = 0, quality: int | None = None,
                 strip_metadata: bool = False) -> list[Path]:
    """Write the extras first, then the image (its presence means the input is done); returns every path written.

    The image carries the input's EXIF, ICC profile and XMP unless ``strip_metadata``.
    """
    extras = write_extras(result, dst, std_path, samples, bit_depth, overwrite=overwrite, protect=protect,
                          value_range=image.value_range, quality=quality)
    write_image(dst, result.image, bit_depth=bit_depth, alpha=resized_alpha(image, result.image.shape[-2:]),
                overwrite=overwrite, protect=protect, value_range=image.value_range, quality=quality,
                metadata=NO_METADATA if strip_metadata else image.metadata)
    return [dst, *extras]


def write_extras(result: Restoration, dst: Path, std_path: Path | None, samples: int, bit_depth: int, *,
                 overwrite: bool, protect: list[Path], value_range: float | None = None,
                 quality: int | None = None) -> list[Path]:
    """Write the std map (raw values in image units: float TIFF, or 16-bit PNG) and the first samples."""
    written = []
    if std_path is not None:
        if result.std is None:
            raise RestoreError("the model gave no uncertainty map")
        depth = 32 if std_path.suffix.lower() in (".tif", ".tiff") else 16
        write_image(std_path, result.std.clamp_min(0), bit_depth=depth, overwrite=overwrite, protect=protect)
        written.append(std_path)
    if samples:
        if result.samples is None or result.samples.shape[0] < samples:
            raise RestoreError(f"the model gave fewer than {samples} posterior samples")
        for k, path in enumerate(sample_paths(dst, samples)):
            write_image(path, result.samples[k], bit_depth=bit_depth, overwrite=overwrite, protect=protect,
                        value_range=value_range, quality=quality)
            written.append(path)
    return written

