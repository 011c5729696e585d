"""``restore bench``: turn the command's options into a benchmark job and run it."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import cv2
import torch

from restore.bench.cases import settings_for
from restore.bench.methods import split_specs
from restore.bench.overview import OVERVIEW
from restore.bench.runner import BenchJob, run_bench
from restore.devices import check_device
from restore.errors import RestoreError


def run_bench_command(*, task: str, datasets: list[Path], models: str, output: Path, sigmas: list[float],
                      scales: list[int], kernel: str | None, missing: list[float], limit: int | None, crop: int | None,
                      seed: int, device: str, threads: int | None, quiet: bool) -> None:
    """Check every option before any work, run the benchmark, say where the results are."""
    settings = settings_for(task, sigmas=sigmas, scales=scales, kernel=kernel, missing=missing)
    device = str(check_device(device))  # "auto" resolved: the tables name the device that ran
    if threads is not None:
        if threads < 1:
            raise RestoreError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    job = BenchJob(task=task, datasets=datasets, settings=settings, models=split_specs(models), out_dir=output,
                   seed=seed, limit=limit, crop=crop, device=device, progress=not quiet and sys.stderr.isatty(),
                   command="restore " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "restore bench")
    for path in run_bench(job):
        if path.suffix == ".md" and path.name != OVERVIEW and not quiet:
            print(path.read_text().split("## Protocol")[0].rstrip())
        if not quiet:
            print(f"wrote {path}", file=sys.stderr)
