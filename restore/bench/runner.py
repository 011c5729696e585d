"""``restore bench``: tasks x datasets x methods, scored under one written protocol, resumable.

For each dataset it writes, under the output folder, ``<stem>.jsonl`` (one
record per image, setting and method, appended as each finishes), ``<stem>.md``
and ``.json`` (the summary with its protocol, machine and command) and, when
matplotlib is installed, ``<stem>.png`` (PSNR against seconds per image); the
stem is ``<task>_<dataset>``, or ``<task>_<dataset>_crop<N>`` with ``--crop N``. A record already in the JSON lines under the same
protocol is not redone, so an interrupted run picks up where it stopped.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from restore.bench.cases import DESCRIPTION, SEED_RULE, Case, Setting, degrade
from restore.bench.methods import Method, build_method
from restore.bench.overview import write_overview
from restore.bench.provenance import git_commit, machine_info, now_utc, timing_machine
from restore.bench.published import published_for
from restore.bench.records import key_of, protocol_id, read_records
from restore.bench.report import markdown, summarise
from restore.bench.scoring import PROTOCOL, input_psnr, score
from restore.errors import RestoreError
from restore.io import atomic_write, list_images, read_image
from restore.jsonl import JsonLinesWriter

# Bumped whenever a change to degradations or scores changes the numbers: older records are then not reused.
PROTOCOL_VERSION = 1
# What one method may raise on one image: recorded as that run's error; the benchmark goes on.
METHOD_ERRORS = (RestoreError, RuntimeError, ValueError)
# A call on this crop before timing, so that one-off start-up costs are not billed to the first image.
WARMUP_SIDE = 64


@dataclass
class BenchJob:
    """What one ``restore bench`` command asked for."""

    task: str
    datasets: list[Path]
    settings: list[Setting]
    models: list[str]
    out_dir: Path
    seed: int = 0
    limit: int | None = None
    crop: int | None = None
    device: str = "cpu"
    progress: bool = True
    command: str = ""
    say: Callable[[str], None] = field(default=lambda message: tqdm.write(message, file=sys.stderr))


def run_bench(job: BenchJob) -> list[Path]:
    """Run the whole benchmark; returns the summary files written (Markdown first)."""
    _check(job)
    methods = {spec: build_method(spec, job.task, job.device) for spec in job.models}
    machine = timing_machine(machine_info(job.device))
    written = []
    for dataset in job.datasets:
        written += _run_dataset(job, dataset, methods, machine)
    overview = write_overview(job.out_dir)
    return written + ([overview] if overview else [])


def _check(job: BenchJob) -> None:
    if not job.datasets:
        raise RestoreError("--dataset is required: a folder of clean images")
    for folder in job.datasets:
        if not folder.is_dir():
            raise RestoreError(f"dataset folder not found: {folder}")
    if job.limit is not None and job.limit < 1:
        raise RestoreError(f"--limit must be >= 1, got {job.limit}")
    if job.crop is not None and job.crop < 16:
        raise RestoreError(f"--crop must be >= 16 pixels, got {job.crop}")
    if job.out_dir.exists() and not job.out_dir.is_dir():
        raise RestoreError(f"output {job.out_dir} is a file; bench writes a folder of results")


def protocol(job: BenchJob) -> dict:
    """Everything that fixes the numbers besides the (image, setting, method) of a record."""
    crop = f"central {job.crop} x {job.crop} crop" if job.crop else "whole image"
    return {"task": job.task, "seed": job.seed, "clean": f"8-bit image / 255, float32, {crop}",
            "degradation": DESCRIPTION[job.task], "seeds": SEED_RULE,
            "scores": PROTOCOL[job.task], **{k: PROTOCOL[k] for k in ("data range", "ssim", "lpips", "mean")},
            "restorers": "run through restore.Pipeline on the whole image (tile 0), as users run them",
            "timing": f"perf_counter around the restore call (result moved to the CPU inside it), after one "
                      f"warm-up call per method and setting on a {WARMUP_SIDE} x {WARMUP_SIDE} crop"}


def _clean(path: Path, crop: int | None) -> torch.Tensor:
    x = read_image(path).pixels
    if crop is None:
        return x
    h, w = x.shape[-2:]
    if min(h, w) < crop:
        raise RestoreError(f"{path.name} ({w} x {h}) is smaller than --crop {crop}")
    top, left = (h - crop) // 2, (w - crop) // 2
    return x[..., top : top + crop, left : left + crop]


def _run_dataset(job: BenchJob, dataset: Path, methods: dict[str, Method], machine: str) -> list[Path]:
    paths = list_images(dataset)[: job.limit]
    if not paths:
        raise RestoreError(f"{dataset}: no images (png, jpg, tif, bmp) found")
    # Cropped runs are another protocol: their summary must not replace the whole-image one.
    stem = job.out_dir / (f"{job.task}_{dataset.name}" + (f"_crop{job.crop}" if job.crop else ""))
    jsonl = stem.with_name(stem.name + ".jsonl")
    proto = protocol(job)
    pid = protocol_id({"task": job.task, "seed": job.seed, "crop": job.crop, "version": PROTOCOL_VERSION})
    done = read_records(jsonl)

    def finished(path: Path, setting: Setting, spec: str) -> bool:
        # A failed record is tried again: the failure may have been the machine's, not the method's.
        record = done.get((pid, dataset.name, path.name, setting.label, spec))
        return record is not None and "error" not in record

    todo = [(s, p, m) for s in job.settings for p in paths for m in methods if not finished(p, s, m)]
    bar = tqdm(total=len(job.settings) * len(paths) * len(methods), initial=len(job.settings) * len(paths) * len(methods)
               - len(todo), disable=not job.progress, unit="run", desc=f"{job.task} {dataset.name}")
    channels: set[int] = set()
    # (method, setting) -> None once warmed up, or why the method refuses the setting (then it is not run at all).
    warmed: dict[tuple[str, str], str | None] = {}
    with JsonLinesWriter(jsonl, what="benchmark records") as sink:
        for index, path in enumerate(paths):
            try:
                clean = _clean(path, job.crop)
            except RestoreError as e:
                job.say(f"error: {dataset.name}/{path.name}: {e} (skipped)")
                bar.update(len(job.settings) * len(methods))
                continue
            channels.add(clean.shape[1])
            for setting in job.settings:
                pending = [spec for spec in methods if not finished(path, setting, spec)]
                case = degrade(setting, clean, job.seed, index) if pending else None
                for spec in pending:
                    method = methods[spec]
                    if (spec, setting.label) not in warmed:
                        warmed[spec, setting.label] = _warm_up(method, setting, clean, job.seed)
                    if warmed[spec, setting.label] is not None:
                        bar.update(1)
                        continue
                    record = _measure(method, case, setting, job.seed) | {
                        "machine": machine, "protocol": pid, "dataset": dataset.name, "image": path.name, "index": index,
                        "setting": setting.label, "method": spec}
                    sink.write(record)
                    done[key_of(record)] = record
                    bar.update(1)
                    if "error" in record:
                        job.say(f"error: {path.name} {setting.label} {spec}: {record['error']}")
    bar.close()
    refused = {f"{spec} at {label}": why for (spec, label), why in warmed.items() if why is not None}
    for what, why in refused.items():
        job.say(f"not run: {what}: {why}")
    return _write_summary(job, dataset, stem, proto, pid, paths, done, channels, methods, refused)


def _warm_up(method: Method, setting: Setting, clean: torch.Tensor, seed: int) -> str | None:
    """One untimed call on a small crop (lazy initialisation, allocator warm-up).

    Returns the one-line reason when the method refuses the setting itself
    (``RestoreError``: rddm has no x2 weights, say): it is then not run on any
    image and the summary says why. Other failures show up when timed.
    """
    case = degrade(setting, clean[..., :WARMUP_SIDE, :WARMUP_SIDE], seed, -1)
    try:
        method.run(case.degraded, case.operator, seed)
    except RestoreError as e:
        return str(e).splitlines()[0]
    except METHOD_ERRORS:
        pass
    return None


def _measure(method: Method, case: Case, setting: Setting, seed: int) -> dict:
    """Run one method on one case; a failure becomes a record with its error, not the end of the benchmark."""
    base = {"channels": case.clean.shape[1], "height": case.clean.shape[-2], "width": case.clean.shape[-1],
            "megapixels": case.clean.shape[-2] * case.clean.shape[-1] / 1e6, "input_psnr": input_psnr(case),
            # Other jobs on the machine slow a method down: the load says when a time is not comparable.
            "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    start = time.perf_counter()
    try:
        out, info = method.run(case.degraded, case.operator, seed)
    except METHOD_ERRORS as e:
        return base | {"error": str(e).splitlines()[0]}
    seconds = time.perf_counter() - start
    if out.shape != case.clean.shape:
        return base | {"error": f"output {tuple(out.shape)} does not match the reference {tuple(case.clean.shape)}"}
    evaluations = info.get("evaluations", info.get("steps"))
    return base | {"seconds": seconds, "evaluations": evaluations, **score(setting, out, case.clean)}


def _write_summary(job: BenchJob, dataset: Path, stem: Path, proto: dict, pid: str, paths: list[Path],
                   done: dict, channels: set[int], methods: dict[str, Method], refused: dict[str, str]) -> list[Path]:
    names = {p.name for p in paths}
    records = [r for r in done.values() if r["protocol"] == pid and r["dataset"] == dataset.name and r["image"] in names]
    settings = [s.label for s in job.settings]
    published = published_for(job.task, dataset.name, channels)
    report = {"dataset": dataset.name, "dataset_path": str(dataset), "images": [p.name for p in paths],
              "settings": settings, "date": now_utc(), "commit": git_commit(), "machine": machine_info(job.device),
              "command": job.command, "protocol": proto, "protocol_id": pid,
              "methods": {spec: m.description for spec, m in methods.items()},
              "summary": summarise(records, settings, list(methods)),
              "published": published, "failures": [r for r in records if "error" in r], "not_run": refused}
    md, js = stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".json")
    atomic_write(md, lambda f: f.write(markdown(report).encode()), what="summary")
    atomic_write(js, lambda f: f.write((json.dumps(report, indent=1, default=vars) + "\n").encode()), what="summary")
    written = [md, js]
    plot = _plot(report, stem.with_name(stem.name + ".png"), job.say)
    return written + ([plot] if plot else [])


def _plot(report: dict, path: Path, say: Callable[[str], None]) -> Path | None:
    """PSNR against seconds per image, when matplotlib is installed (the `bench` extra)."""
    try:
        from restore.bench.plots import psnr_vs_seconds

        psnr_vs_seconds(report["summary"], path, f"{report['protocol']['task']} on {report['dataset']}")
    except RestoreError as e:
        say(f"no plot: {e}")
        return None
    return path
