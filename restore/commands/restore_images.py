"""``restore denoise|deblur|sr|inpaint``: run a restorer over files or a folder."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from restore.commands.extra_outputs import std_map_path, write_extras
from restore.commands.files import plan_outputs
from restore.commands.operator_options import build_operator, check_denoise_sigma, load_mask, validate_options
from restore.commands.restorer_options import gives, restorer_kwargs
from restore.commands.tune_restorer import check_tuner_options, load_tuner
from restore.commands.wording import cli_words
from restore.errors import RestoreError
from restore.io import MAX_PIXELS, ImageData, check_output, read_image, remove_stale_temps, write_image
from restore.operators.noise_level import estimate_sigma
from restore.pipeline import PRECISIONS, Pipeline, min_tile
from restore.raster import wants_streaming
from restore.restorers import available, load, names_for_task


@dataclass
class RestoreJob:
    """Everything one restoring command was asked to do."""

    task: str
    inputs: Path
    output: Path | None
    model: str
    sigma: float | None = None
    kernel: str | None = None
    scale: int | None = None
    mask: str | None = None
    psf_mtf: float | None = None
    sigma_poisson: float | None = None
    adapt: str | None = None
    adapt_ref: Path | None = None
    seed: int = 0
    device: str = "cpu"
    bit_depth: int | None = None
    overwrite: bool = False
    quiet: bool = False
    tile: int = 512
    overlap: int | None = None
    batch_size: int = 8
    precision: str = "fp32"
    scheduler: str | None = None
    workers: int | None = None
    value_range: float | None = None
    samples: int | None = None
    save_samples: int | None = None
    std_map: Path | None = None
    lam: float | None = None
    iterations: int | None = None
    lr: float | None = None
    gamma: float | None = None
    steps: int | None = None
    perception: float | None = None
    tuner: Path | None = None
    max_pixels: float | None = None  # None: restore.io.MAX_PIXELS; 0: no limit


def check_model(model: str, task: str) -> None:
    """Refuse unknown models and models that do not do ``task``, listing those that do."""
    registry = available()
    if model not in registry:
        raise RestoreError(f"unknown model '{model}'; models for {task}: {', '.join(names_for_task(task)) or 'none'}")
    if task not in registry[model].tasks:
        raise RestoreError(
            f"model '{model}' does not support {task}; models for {task}: {', '.join(names_for_task(task)) or 'none'}"
        )


def check_device(device: str) -> None:
    """Refuse devices torch cannot use here, before any work is done."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise RestoreError(f"unknown device '{device}' (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RestoreError(f"device '{device}' requested but no CUDA GPU is available here")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RestoreError(f"device '{device}' requested but this machine has {torch.cuda.device_count()} CUDA GPU(s)")


def run_restore_job(job: RestoreJob) -> None:
    """Validate everything up front, then restore each image (skipping existing outputs).

    Options, the output plan (formats, folders that cannot be written, an output
    over an input) and the tiling are checked before the model is loaded. In a
    folder run every file that fails, whatever the error, is reported on one line
    of stderr and the run goes on; it exits non-zero if any failed.
    """
    started = time.time()
    check_model(job.model, job.task)
    validate_options(job.task, sigma_255=job.sigma, kernel=job.kernel, scale=job.scale, mask=job.mask,
                     psf_mtf=job.psf_mtf, sigma_poisson=job.sigma_poisson)
    check_denoise_sigma(job.task, job.sigma)
    check_device(job.device)
    if job.adapt_ref is not None and job.adapt is None:
        job.adapt = "external"
    check_tiling(job)
    check_tuner_options(job.perception, job.tuner)
    options = restorer_kwargs(job.model, {"--samples": job.samples, "--save-samples": job.save_samples,
                                          "--lam": job.lam, "--iterations": job.iterations, "--lr": job.lr,
                                          "--gamma": job.gamma, "--steps": job.steps})
    pairs = plan_outputs(job.inputs, job.output, "restored")
    check_extra_outputs(job, len(pairs))
    check_outputs(job, pairs)
    for path in remove_stale_temps([dst for _, dst in pairs], before=started):
        _say(job, f"removed {path} (temp file of an interrupted run)")
    ref = read_image(job.adapt_ref, max_pixels=_max_pixels(job)).pixels if job.adapt_ref is not None else None
    # Iterative restorers (reddiff) show a bar over their steps: not under --quiet or when stderr is not a terminal.
    restorer = load(job.model, device=job.device, adapt=job.adapt, adapt_ref=ref,
                    progress=not job.quiet and sys.stderr.isatty(), **options)
    if job.tuner is not None:
        restorer = load_tuner(job.tuner, restorer, job.task, job.perception)
    generator = torch.Generator().manual_seed(job.seed)
    failures = 0
    show_bar = len(pairs) > 1 and not job.quiet and sys.stderr.isatty()
    for src, dst in tqdm(pairs, disable=not show_bar, unit="img", desc=job.task):
        if dst.exists() and not job.overwrite:
            _say(job, f"skipped {dst} (exists; --overwrite to replace)")
            continue
        try:
            _restore_file(job, restorer, src, dst, generator)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - one bad file, whatever it raises, must not stop the others
            if len(pairs) == 1:
                raise
            failures += 1
            tqdm.write(f"error: {src}: {failure_message(e, src)}", file=sys.stderr)
    if failures:
        raise RestoreError(f"{failures} of {len(pairs)} images failed (each named above)")


def failure_message(error: BaseException, src: Path) -> str:
    """One line for a file that failed, without its path (the caller names it once)."""
    if isinstance(error, MemoryError):
        return "out of memory: use a smaller --tile or a smaller image"
    lines = [line for line in str(error).splitlines() if line.strip()]
    text = lines[0].strip() if lines else type(error).__name__
    for prefix in (f"{src}: ", f"{src.resolve()}: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if not isinstance(error, RestoreError):
        text = f"unexpected {type(error).__name__}: {text}"
    return cli_words(text)


def _max_pixels(job: RestoreJob) -> float | None:
    return MAX_PIXELS if job.max_pixels is None else (job.max_pixels or None)


def check_outputs(job: RestoreJob, pairs: list[tuple[Path, Path]]) -> None:
    """Refuse, before any restoration, outputs that cannot be written: their format, their folder."""
    for _, dst in pairs:
        if job.bit_depth is not None:
            check_output(dst, job.bit_depth)
    folders = {dst.parent for _, dst in pairs}
    if job.std_map is not None:
        folders.add(job.std_map if job.std_map.is_dir() else job.std_map.parent)
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


def check_extra_outputs(job: RestoreJob, count: int) -> None:
    """Refuse --std-map / --save-samples for models without them, and a std-map file for many inputs."""
    if job.std_map is not None:
        if not gives(job.model, "std"):
            raise RestoreError(f"model '{job.model}' gives no uncertainty map (--std-map needs e.g. vble)")
        if count > 1 and not job.std_map.is_dir():
            raise RestoreError(f"a folder of inputs needs --std-map to be an existing folder, got {job.std_map}")
    if job.save_samples and not gives(job.model, "samples"):
        raise RestoreError(f"model '{job.model}' draws no posterior samples")


def check_tiling(job: RestoreJob) -> None:
    """Refuse bad tiling, precision and scale-out options before any work is done."""
    if job.tile < 0 or (job.overlap or 0) < 0:
        raise RestoreError(f"--tile and --overlap must be >= 0, got {job.tile} and {job.overlap}")
    if job.tile and job.overlap is not None and job.overlap >= job.tile:
        raise RestoreError(f"--overlap ({job.overlap}) must be smaller than --tile ({job.tile})")
    if job.batch_size < 1:
        raise RestoreError(f"--batch-size must be >= 1, got {job.batch_size}")
    if job.precision not in PRECISIONS:
        raise RestoreError(f"--precision must be one of {', '.join(PRECISIONS)}, got {job.precision!r}")
    if job.workers is not None and job.workers < 1:
        raise RestoreError(f"--workers must be >= 1, got {job.workers}")
    if job.value_range is not None and not 0 < job.value_range < float("inf"):
        raise RestoreError(f"--value-range must be a number > 0, got {job.value_range}")
    if job.value_range is not None and job.bit_depth is not None:
        raise RestoreError("--value-range writes outputs in the input's units and type: drop --bit-depth")
    if job.max_pixels is not None and not 0 <= job.max_pixels < float("inf"):
        raise RestoreError(f"--max-pixels must be a number >= 0 (0: no limit), got {job.max_pixels}")
    halo = int(getattr(available()[job.model], "halo", 0) or 0)
    if job.tile and job.tile < min_tile(halo):
        raise RestoreError(f"--tile {job.tile} is too small for model '{job.model}' (halo {halo} pixels): "
                           f"use --tile {min_tile(halo)} or more, or --tile 0 for the whole image")


def _pipeline(job: RestoreJob, restorer, operator) -> Pipeline:
    return Pipeline(
        restorer, operator, tile=job.tile, overlap=job.overlap, batch_size=job.batch_size, device=job.device,
        precision=job.precision, seed=job.seed, progress=not job.quiet and sys.stderr.isatty(),
        log=lambda message: _say(job, message),
    )


def _restore_file(job: RestoreJob, restorer, src: Path, dst: Path, generator: torch.Generator) -> None:
    if job.scheduler is not None or wants_streaming(src):
        _restore_raster(job, restorer, src, dst)
        return
    img = read_image(src, value_range=job.value_range, max_pixels=_max_pixels(job))
    y = img.pixels
    depth = job.bit_depth or img.bit_depth
    # What the output's format cannot hold is refused before restoring, not after.
    check_output(dst, depth, channels=y.shape[1], value_range=img.value_range)
    mask = load_mask(job.mask, tuple(y.shape[-2:]), generator)
    sigma = job.sigma
    if job.task == "denoise" and sigma is None:
        sigma = estimate_sigma(y) * 255
        _say(job, f"{src.name}: estimated noise sigma = {sigma:.2f} (0-255 units)")
    op = build_operator(job.task, sigma_255=sigma, kernel=job.kernel, scale=job.scale, mask=mask,
                         psf_mtf=job.psf_mtf, sigma_poisson=job.sigma_poisson)
    result = _pipeline(job, restorer, op).run(y)
    alpha = _resize_alpha(img, result.image.shape[-2:])
    std_path = std_map_path(job.std_map, src, job.std_map.is_dir()) if job.std_map is not None else None
    extras = write_extras(result, dst, std_path, job.save_samples or 0, depth, overwrite=job.overwrite, protect=[src],
                          value_range=img.value_range)
    write_image(dst, result.image, bit_depth=depth, alpha=alpha, overwrite=job.overwrite, protect=[src],
                value_range=img.value_range)
    _say(job, f"wrote {', '.join(map(str, [dst, *extras]))}")


def _restore_raster(job: RestoreJob, restorer, src: Path, dst: Path) -> None:
    """Stream a (Geo)TIFF block by block, in this process or on a Dask cluster."""
    if dst.suffix.lower() not in (".tif", ".tiff"):
        raise RestoreError(f"a GeoTIFF input is written as a GeoTIFF: name the output .tif, not {dst.suffix}")
    if job.mask is not None:
        raise RestoreError("inpainting a streamed raster is not supported; pass a PNG/TIFF without georeferencing")
    if job.bit_depth is not None:
        raise RestoreError("--bit-depth does not apply to GeoTIFF outputs: they keep the input's pixel type")
    if job.std_map is not None or job.save_samples:
        raise RestoreError("--std-map and --save-samples are not written for streamed GeoTIFFs yet")
    op = build_operator(job.task, sigma_255=job.sigma, kernel=job.kernel, scale=job.scale, mask=None,
                        psf_mtf=job.psf_mtf, sigma_poisson=job.sigma_poisson)
    pipe = _pipeline(job, restorer, op)
    pipe.restore_file(src, dst, value_range=job.value_range, overwrite=job.overwrite,
                      scheduler=job.scheduler, workers=job.workers)
    _say(job, f"wrote {dst}")


def _resize_alpha(img: ImageData, shape: torch.Size) -> np.ndarray | None:
    """The input's alpha, untouched when the size is kept, bicubically resized otherwise."""
    if img.alpha is None or tuple(img.alpha.shape[:2]) == tuple(shape):
        return img.alpha
    return cv2.resize(img.alpha, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _say(job: RestoreJob, message: str) -> None:
    if not job.quiet:
        tqdm.write(message, file=sys.stderr)
