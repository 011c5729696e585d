"""``restore denoise|deblur|sr|inpaint``: run a restorer over files or a folder."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from restore.commands.files import plan_outputs
from restore.commands.operator_options import build_operator, load_mask, validate_options
from restore.errors import RestoreError
from restore.io import ImageData, read_image, write_image
from restore.operators.noise_level import estimate_sigma
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
    adapt: str | None = None
    adapt_ref: Path | None = None
    seed: int = 0
    device: str = "cpu"
    bit_depth: int | None = None
    overwrite: bool = False
    quiet: bool = False


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


def run_restore_job(job: RestoreJob) -> None:
    """Validate everything up front, then restore each image (skipping existing outputs)."""
    check_model(job.model, job.task)
    validate_options(job.task, sigma_255=job.sigma, kernel=job.kernel, scale=job.scale, mask=job.mask)
    check_device(job.device)
    if job.adapt_ref is not None and job.adapt is None:
        job.adapt = "external"
    pairs = plan_outputs(job.inputs, job.output, "restored")
    ref = read_image(job.adapt_ref).pixels if job.adapt_ref is not None else None
    restorer = load(job.model, device=job.device, adapt=job.adapt, adapt_ref=ref)
    generator = torch.Generator().manual_seed(job.seed)
    failures = 0
    show_bar = len(pairs) > 1 and not job.quiet
    for src, dst in tqdm(pairs, disable=not show_bar, unit="img", desc=job.task):
        if dst.exists() and not job.overwrite:
            _say(job, f"skipped {dst} (exists; --overwrite to replace)")
            continue
        try:
            _restore_file(job, restorer, src, dst, generator)
        except RestoreError as e:
            if len(pairs) == 1:
                raise
            failures += 1
            tqdm.write(f"error: {src}: {e}")
    if failures:
        raise RestoreError(f"{failures} of {len(pairs)} images failed")


def _restore_file(job: RestoreJob, restorer, src: Path, dst: Path, generator: torch.Generator) -> None:
    img = read_image(src)
    y = img.pixels
    mask = load_mask(job.mask, tuple(y.shape[-2:]), generator)
    sigma = job.sigma
    if job.task == "denoise" and sigma is None:
        sigma = estimate_sigma(y) * 255
        _say(job, f"{src.name}: estimated noise sigma = {sigma:.2f} (0-255 units)")
    op = build_operator(job.task, sigma_255=sigma, kernel=job.kernel, scale=job.scale, mask=mask)
    result = restorer.restore(y, op, generator=generator)
    alpha = _resize_alpha(img, result.image.shape[-2:])
    write_image(dst, result.image, bit_depth=job.bit_depth or img.bit_depth, alpha=alpha,
                overwrite=job.overwrite, protect=[src])
    _say(job, f"wrote {dst}")


def _resize_alpha(img: ImageData, shape: torch.Size) -> np.ndarray | None:
    """The input's alpha, untouched when the size is kept, bicubically resized otherwise."""
    if img.alpha is None or tuple(img.alpha.shape[:2]) == tuple(shape):
        return img.alpha
    return cv2.resize(img.alpha, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _say(job: RestoreJob, message: str) -> None:
    if not job.quiet:
        tqdm.write(message, file=sys.stderr)
