"""What every input of a ``restore.run`` job is restored with, checked once before any work."""
from __future__ import annotations

import numbers
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from restore.batch_names import KEEP, OUTPUT_EXTENSIONS
from restore.devices import check_device
from restore.errors import RestoreError
from restore.io import IMAGE_EXTENSIONS, check_output
from restore.operator_specs import check_denoise_sigma, validate_operator_spec
from restore.pipeline import PRECISIONS, min_tile

LOG_NAME = "restore-log.jsonl"
BIT_DEPTHS = (8, 16, 32)


@dataclass(frozen=True)
class BatchOptions:
    """The settings of one job (noise levels in [0, 1], the image's units)."""

    task: str
    sigma: float | None = None
    kernel: str | None = None
    scale: int | None = None
    mask: str | None = None
    psf_mtf: float | None = None
    sigma_poisson: float | None = None
    device: str = "auto"
    batch_size: int = 8
    tile: int = 512
    overlap: int | None = None
    precision: str = "fp32"
    seed: int = 0
    overwrite: bool = False
    value_range: float | None = None
    max_pixels: float | None = None
    bit_depth: int | None = None
    std_map: Path | None = None
    save_samples: int = 0
    scheduler: str | None = None
    workers: int | None = None
    progress: bool = True
    ext: str = KEEP
    suffix: str = ""
    quality: int | None = None
    recursive: bool = False
    strip_metadata: bool = False

    def operator_spec(self) -> dict:
        """The operator options, as ``restore.operator_specs.build_operator`` takes them."""
        return {"kernel": self.kernel, "scale": self.scale, "psf_mtf": self.psf_mtf, "sigma_poisson": self.sigma_poisson}


def check_options(o: BatchOptions) -> None:
    """Refuse any bad option with one line naming it, before anything is read or loaded."""
    for name in ("sigma", "psf_mtf", "sigma_poisson", "value_range", "max_pixels"):
        _check_number(name, getattr(o, name))
    validate_operator_spec(o.task, sigma=o.sigma, kernel=o.kernel, scale=o.scale, mask=o.mask, psf_mtf=o.psf_mtf,
                           sigma_poisson=o.sigma_poisson)
    check_denoise_sigma(o.task, o.sigma)
    check_device(o.device)
    _check_count("batch_size", o.batch_size, 1)
    _check_count("tile", o.tile, 0)
    _check_count("seed", o.seed, 0)
    _check_count("save_samples", o.save_samples, 0)
    if o.overlap is not None:
        _check_count("overlap", o.overlap, 0)
        if o.tile and o.overlap >= o.tile:
            raise RestoreError(f"overlap ({o.overlap}) must be smaller than tile ({o.tile})")
    if o.workers is not None:
        _check_count("workers", o.workers, 1)
    if o.precision not in PRECISIONS:
        raise RestoreError(f"precision must be one of {', '.join(PRECISIONS)}, got {o.precision!r}")
    if o.value_range is not None and not 0 < o.value_range < float("inf"):
        raise RestoreError(f"value_range must be a number > 0, got {o.value_range!r}")
    if o.max_pixels is not None and not o.max_pixels > 0:
        raise RestoreError(f"max_pixels must be a number > 0 (or None: no limit), got {o.max_pixels!r}")
    if o.bit_depth is not None and o.bit_depth not in BIT_DEPTHS:
        raise RestoreError(f"bit_depth must be 8, 16 or 32 (float TIFF), got {o.bit_depth!r}")
    if o.value_range is not None and o.bit_depth is not None:
        raise RestoreError("value_range writes outputs in the input's units and type: drop bit_depth")
    check_output_settings(o.ext, o.suffix, o.quality, recursive=o.recursive, strip_metadata=o.strip_metadata)


def check_output_settings(ext: object, suffix: object, quality: object, **switches: object) -> None:
    """Refuse output settings no file could be named or written with (the CLI checks them before naming files)."""
    if not isinstance(ext, str) or ext not in OUTPUT_EXTENSIONS:
        raise RestoreError(f"ext must be one of {', '.join(OUTPUT_EXTENSIONS)}, got {ext!r}")
    if not isinstance(suffix, str):
        raise RestoreError(f"suffix must be text, got {suffix!r}")
    if any(c in suffix for c in ("/", "\\", "\0")):  # a backslash too: the names must work on every OS
        raise RestoreError(f"suffix {suffix!r} must not hold '/', '\\' or NUL: it is added to file names "
                           f"(out_dir says the folder)")
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, numbers.Integral)
                                or not 1 <= quality <= 100):
        raise RestoreError(f"quality must be an integer from 1 to 100 (jpg, webp), got {quality!r}")
    for name, value in switches.items():
        if not isinstance(value, bool):
            raise RestoreError(f"{name} must be True or False, got {value!r}")


def check_tile(o: BatchOptions, model: str, halo: int) -> None:
    """Refuse a tile too small for the model's halo."""
    if o.tile and o.tile < min_tile(halo):
        raise RestoreError(f"tile={o.tile} is too small for model '{model}' (halo {halo} pixels): "
                           f"use tile={min_tile(halo)} or more, or tile=0 for whole images")


def check_outputs_possible(o: BatchOptions, outputs: list[Path], restorer_outputs: tuple[str, ...], model: str) -> None:
    """Refuse, before any restoration, outputs that cannot be written: their format, their extras."""
    if o.bit_depth is not None:
        for path in outputs:
            check_output(path, o.bit_depth)
    if o.std_map is not None:
        if "std" not in restorer_outputs:
            raise RestoreError(f"model '{model}' gives no uncertainty map (std_map needs e.g. vble)")
        if len(outputs) != 1 and not o.std_map.is_dir():
            raise RestoreError(f"many inputs need std_map to be an existing folder, got {o.std_map}")
    if o.save_samples and "samples" not in restorer_outputs:
        raise RestoreError(f"model '{model}' draws no posterior samples (save_samples needs e.g. vble)")
    folders = {path.parent for path in outputs}
    if o.std_map is not None:
        folders.add(o.std_map if o.std_map.is_dir() else o.std_map.parent)
    for folder in sorted(folders):
        check_writable(folder)


def check_writable(folder: Path) -> None:
    """Refuse a folder that cannot be created or written (probed with a file that is removed at once)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RestoreError(f"cannot create the output folder {folder}: {existing} is a file")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".restore-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or exc
        if existing != folder:  # name the folder asked for, and the one that stops it being created
            raise RestoreError(f"cannot create the output folder {folder}: {existing} is not writable ({reason})") from None
        raise RestoreError(f"output folder {folder} is not writable ({reason})") from None


def log_path(out_dir: Path | None, log: str | os.PathLike | bool | None) -> Path | None:
    """The JSON-lines log: ``log`` itself, ``out_dir / LOG_NAME`` by default, None when ``log=False``."""
    if log is False or (log is None and out_dir is None):
        return None
    path = out_dir / LOG_NAME if log is None or log is True else Path(log)
    if path.suffix.lower() in IMAGE_EXTENSIONS or path.is_dir():
        raise RestoreError(f"log {path} must be a JSON-lines file path (e.g. {LOG_NAME}), not an image or a folder")
    return path


def _check_number(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise RestoreError(f"{name} must be a number, got {value!r}")


def _check_count(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise RestoreError(f"{name} must be an integer >= {least}, got {value!r}")
