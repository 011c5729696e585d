"""Files written beside a restored image: the uncertainty map and posterior samples."""
from __future__ import annotations

from pathlib import Path

from restore.errors import RestoreError
from restore.io import write_image
from restore.restorers.base import Restoration


def std_map_path(std_map: Path, src: Path, many: bool) -> Path:
    """Where the std map of ``src`` goes: ``std_map`` itself, or inside it for a folder of inputs."""
    return std_map / f"{src.stem}_std.tif" if many else std_map


def sample_paths(dst: Path, count: int) -> list[Path]:
    """``<stem>_sample1<ext>`` ... beside the output."""
    return [dst.with_name(f"{dst.stem}_sample{k + 1}{dst.suffix}") for k in range(count)]


def write_extras(result: Restoration, dst: Path, std_path: Path | None, samples: int, bit_depth: int, *,
                 overwrite: bool, protect: list[Path], value_range: float | None = None) -> list[Path]:
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
                        value_range=value_range)
            written.append(path)
    return written
