"""``restore degrade``: apply a toolkit operator to clean images, seeded."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from restore.commands.files import plan_outputs
from restore.commands.units import poisson_from_cli, sigma_from_cli
from restore.errors import RestoreError
from restore.io import read_image, write_image
from restore.operator_specs import build_operator, load_mask, validate_operator_spec
from restore.tasks import TASK_NAMES


@dataclass
class DegradeJob:
    """Everything one ``restore degrade`` call was asked to do."""

    inputs: Path
    output: Path
    task: str
    sigma: float = 0.0
    kernel: str | None = None
    scale: int | None = None
    mask: str | None = None
    psf_mtf: float | None = None
    sigma_poisson: float | None = None
    mask_out: Path | None = None
    seed: int = 0
    bit_depth: int | None = None
    overwrite: bool = False
    quiet: bool = False


def run_degrade_job(job: DegradeJob) -> None:
    """Degrade each image with the same operator; the noise seed is ``seed`` + image index."""
    if job.task not in TASK_NAMES:
        raise RestoreError(f"--task must be one of {', '.join(TASK_NAMES)}, got '{job.task}'")
    validate_operator_spec(job.task, **_operator_values(job), mask=job.mask)
    if job.mask_out is not None and job.task != "inpaint":
        raise RestoreError("--mask-out applies to the inpaint task only")
    pairs = plan_outputs(job.inputs, job.output, "degraded")
    if job.mask_out is not None and len(pairs) > 1:
        raise RestoreError("--mask-out takes a single input image (one mask per image)")
    for index, (src, dst) in enumerate(tqdm(pairs, disable=len(pairs) < 2 or job.quiet, unit="img")):
        if dst.exists() and not job.overwrite:
            if not job.quiet:
                tqdm.write(f"skipped {dst} (exists; --overwrite to replace)", file=sys.stderr)
            continue
        _degrade_file(job, src, dst, torch.Generator().manual_seed(job.seed + index))


def _degrade_file(job: DegradeJob, src: Path, dst: Path, generator: torch.Generator) -> None:
    img = read_image(src)
    x = img.pixels
    mask = load_mask(job.mask, tuple(x.shape[-2:]), generator)
    op = build_operator(job.task, **_operator_values(job), mask=mask)
    with torch.inference_mode():
        y = op.measure(x, generator=generator)
    alpha = img.alpha if y.shape[-2:] == x.shape[-2:] else None
    if job.mask_out is not None and mask is not None:
        write_image(job.mask_out, mask[:, :1], bit_depth=8, overwrite=job.overwrite, protect=[src, dst])
    write_image(dst, y, bit_depth=job.bit_depth or img.bit_depth, alpha=alpha, overwrite=job.overwrite, protect=[src])
    if not job.quiet:
        tqdm.write(f"wrote {dst}", file=sys.stderr)


def _operator_values(job: DegradeJob) -> dict:
    """The job's operator options in the library's units (noise levels in [0, 1]); 0 noise is no noise here."""
    return {"sigma": sigma_from_cli(job.sigma), "kernel": job.kernel, "scale": job.scale, "psf_mtf": job.psf_mtf,
            "sigma_poisson": poisson_from_cli(job.sigma_poisson)}
