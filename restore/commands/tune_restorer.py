"""``restore tune``: calibrate a deep-OT tuner for one model and task; ``--tuner`` loads one for the restore commands."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from restore.commands.units import sigma_from_cli
from restore.devices import check_device
from restore.errors import RestoreError
from restore.io import list_images, read_image
from restore.operator_specs import build_operator, validate_operator_spec
from restore.restorers import Restorer, load, names_for_task, registered
from restore.tasks import TASK_NAMES

# The mask of an inpainting operator is per image; one operator cannot serve a folder of them.
TUNABLE_TASKS = tuple(task for task in TASK_NAMES if task != "inpaint")


@dataclass
class TuneJob:
    """Everything one ``restore tune`` call was asked to do."""

    model: str
    task: str
    restored_from: Path
    natural: Path
    output: Path
    sigma: float | None = None
    kernel: str | None = None
    scale: int | None = None
    psf_mtf: float | None = None
    patch: int = 1
    local_mean: int = 5
    autoencoder: str | None = None  # a shipped autoencoder or a local diffusers AutoencoderKL folder
    max_images: int | None = None
    seed: int = 0
    device: str = "auto"
    tile: int = 512
    precision: str = "fp32"
    overwrite: bool = False
    quiet: bool = False


def run_tune_job(job: TuneJob) -> None:
    """Check everything, read both folders, calibrate, write the tuner file atomically."""
    from restore.tuners import DeepOT

    _check_job(job)
    operator = build_operator(job.task, sigma=sigma_from_cli(job.sigma), kernel=job.kernel, scale=job.scale,
                              psf_mtf=job.psf_mtf)
    autoencoder = _autoencoder(job.autoencoder)
    degraded = _read_folder(job.restored_from, "--restored-from", job.max_images)
    natural = _read_folder(job.natural, "--natural", job.max_images)
    restorer = load(job.model, device=job.device)
    start = time.perf_counter()
    tuner = DeepOT.calibrate(restorer, operator, degraded, natural, patch=job.patch, local_mean=job.local_mean, seed=job.seed,
                             tile=job.tile, precision=job.precision, autoencoder=autoencoder)
    tuner.save(job.output)
    _say(job, f"wrote {job.output}: {job.model} {job.task}, {len(degraded)} restored + {len(natural)} natural images, "
              f"{job.patch}x{job.patch} latent patches of {tuner.codec.name}, {time.perf_counter() - start:.1f} s")
    note = tuner.calibration.scene_noise_note()
    if note:
        _say(job, f"note: {note}")


def _check_job(job: TuneJob) -> None:
    cls = registered(job.model)  # "spandrel:FILE" too; an unknown name lists the registered ones
    if job.task not in TUNABLE_TASKS:
        raise RestoreError(f"--task must be one of {', '.join(TUNABLE_TASKS)} for tuning, got '{job.task}'")
    if job.task not in cls.tasks:
        raise RestoreError(f"model '{job.model}' does not support {job.task}; models for {job.task}: "
                           f"{', '.join(names_for_task(job.task)) or 'none'}")
    validate_operator_spec(job.task, sigma=sigma_from_cli(job.sigma), kernel=job.kernel, scale=job.scale,
                           psf_mtf=job.psf_mtf)
    check_device(job.device)  # before the folders are read
    if not 1 <= job.patch <= 5:
        raise RestoreError(f"--patch must be between 1 and 5 (latent patch side), got {job.patch}")
    if job.local_mean < 0 or job.local_mean % 2 == 0 and job.local_mean:
        raise RestoreError(f"--local-mean must be 0 or an odd number of latent cells, got {job.local_mean}")
    if job.precision not in ("fp32", "fp16", "bf16"):
        raise RestoreError(f"--precision must be fp32, fp16 or bf16, got '{job.precision}'")
    if job.max_images is not None and job.max_images < 1:
        raise RestoreError(f"--max-images must be >= 1, got {job.max_images}")
    if job.output.exists() and not job.overwrite:
        raise RestoreError(f"{job.output} exists (--overwrite to replace it)")
    if job.output.is_dir():
        raise RestoreError(f"-o {job.output} is a folder; give a file name such as lidia-s25.dot")


def _autoencoder(given: str | None) -> str | Path:
    """--autoencoder: a shipped name, or a local AutoencoderKL folder, refused (one line) before any image is read.

    The folder is opened here once to check it; calibration opens it again (a second, against minutes of restoring).
    """
    from restore.tuners.codecs import open_codec
    from restore.tuners.latent_codec import DEFAULT_AUTOENCODER

    if given is None:
        return DEFAULT_AUTOENCODER
    return open_codec(given).name


def _read_folder(folder: Path, option: str, limit: int | None) -> list[torch.Tensor]:
    if not folder.is_dir():
        raise RestoreError(f"{option} must be a folder of images, got {folder}")
    paths = list_images(folder)[:limit]
    if not paths:
        raise RestoreError(f"no images (png, jpg, tif, bmp) in {option} folder {folder}")
    return [read_image(p).pixels for p in paths]


def check_tuner_options(perception: float | None, tuner: Path | None) -> None:
    """Refuse --perception without --tuner, a perception out of [-1, 2] and a missing tuner file, before any work."""
    from restore.tuners.deep_ot import check_perception

    if perception is not None and tuner is None:
        raise RestoreError("--perception needs --tuner FILE (calibrate one with `restore tune`)")
    if perception is not None:
        check_perception(perception)
    if tuner is not None and not tuner.is_file():
        raise RestoreError(f"tuner file not found: {tuner}")


def load_tuner(path: Path, restorer: Restorer, task: str, perception: float | None) -> Restorer:
    """``restorer`` wrapped with the deep-OT tuner in ``path`` (perception 1 unless given).

    Refused, with one line, if the file is corrupt or was made for another model or task.
    """
    from restore.tuners import DeepOT, load_calibration

    calibration = load_calibration(path)
    calibration.check_matches(restorer.name, task)
    return DeepOT(restorer, calibration, perception=1.0 if perception is None else perception)


def _say(job: TuneJob, message: str) -> None:
    if not job.quiet:
        tqdm.write(message, file=sys.stderr)
