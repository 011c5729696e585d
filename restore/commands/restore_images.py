"""``restore denoise|deblur|sr|inpaint``: the command line's words turned into one ``restore.run`` call.

This module only translates: 0-255 noise levels into [0, 1], flags and
``-O KEY=VALUE`` into the restorer's declared options, an input file or folder
into ``output=`` or ``out_dir=``, and each record the engine writes into a line
on stderr. Everything else (checks, tiling, streaming, resuming) is
``restore.run``'s.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from restore.batch import run
from restore.batch_options import check_output_settings
from restore.commands.files import plan_outputs
from restore.commands.tune_restorer import check_tuner_options, load_tuner
from restore.commands.units import denoise_sigma_from_cli, poisson_from_cli, sigma_to_cli
from restore.commands.wording import cli_words
from restore.devices import AUTO, auto_device, check_device
from restore.errors import InternalFailure, RestoreError
from restore.io import MAX_PIXELS, read_image
from restore.options import parse_assignments
from restore.restorers import available, load, names_for_task, registered

# Convenience flags of the restore commands -> the declared restorer option each one sets.
OPTION_FLAGS = {"samples": "samples", "save_samples": "keep_samples", "lam": "lam", "iterations": "iterations",
                "lr": "lr", "gamma": "gamma", "steps": "steps", "adapt": "adapt",
                "weights": "weights"}


@dataclass
class RestoreJob:
    """Everything one restoring command was asked to do, in the command line's units (sigma 0-255)."""

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
    adapt_ref: Path | None = None
    seed: int = 0
    device: str = "auto"
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
    max_pixels: float | None = None  # None: restore.io.MAX_PIXELS; 0: no limit
    std_map: Path | None = None
    perception: float | None = None
    tuner: Path | None = None
    ext: str = "keep"
    suffix: str | None = None  # None: "_restored" for a file restored beside itself, else none
    quality: int | None = None
    recursive: bool = False
    strip_metadata: bool = False
    flags: dict[str, object] = field(default_factory=dict)  # OPTION_FLAGS given (None: not given)
    options: list[str] = field(default_factory=list)  # -O KEY=VALUE
    device_note: str | None = None  # what "auto" chose, said once, with the first result (not before a usage error)


def run_restore_job(job: RestoreJob) -> None:
    """Translate the job, run it through ``restore.run``, say what happened to each input.

    Raises:
        RestoreError: a bad option (before any work), or the one input / some of the
            inputs failed (each named on stderr).
    """
    check_model(job.model, job.task)
    check_tuner_options(job.perception, job.tuner)
    job.device = resolve_device(job)
    options = restorer_options(job)
    check_output_settings(job.ext, job.suffix or "", job.quality)  # before they name any file
    pairs = plan_outputs(job.inputs, job.output, "restored", ext=job.ext, suffix=job.suffix, recursive=job.recursive)
    single = len(pairs) == 1 and not job.inputs.is_dir()
    naming = {} if single else {"ext": job.ext, "suffix": job.suffix or "", "recursive": job.recursive}
    model = _restorer(job, options) if job.tuner is not None else job.model
    report = run(
        pairs[0][0] if single else job.inputs, task=job.task, model=model,
        out_dir=None if single else job.output, output=pairs[0][1] if single else None,
        sigma=denoise_sigma_from_cli(job.task, job.sigma), kernel=job.kernel, scale=job.scale, mask=job.mask,
        psf_mtf=job.psf_mtf, sigma_poisson=poisson_from_cli(job.sigma_poisson), device=job.device,
        batch_size=job.batch_size, tile=job.tile, overlap=job.overlap, precision=job.precision, seed=job.seed,
        overwrite=job.overwrite, progress=not job.quiet and sys.stderr.isatty(), value_range=job.value_range,
        max_pixels=MAX_PIXELS if job.max_pixels is None else (job.max_pixels or None), bit_depth=job.bit_depth,
        std_map=job.std_map, save_samples=int(job.flags.get("save_samples") or 0), scheduler=job.scheduler,
        workers=job.workers, quality=job.quality, strip_metadata=job.strip_metadata, **naming,
        on_record=lambda record: _say_record(job, record, single), **({} if job.tuner is not None else options))
    for path in report.removed:
        _say(job, f"removed {path} (temp file of an interrupted run)")
    if report.failed:
        if single:
            error = report.failures[0]["error"] or "failed"
            raise InternalFailure(error) if error.startswith("unexpected ") else RestoreError(error)
        raise RestoreError(f"{report.failed} of {len(report.records)} images failed (each named above)")


def resolve_device(job: RestoreJob) -> str:
    """The device to run on: "auto" resolved by the library (its choice said with the first result); others checked."""
    if job.device.strip().lower() != AUTO:
        return str(check_device(job.device))
    device, why = auto_device()
    job.device_note = f"device: {device} ({why})"
    return str(device)


def check_model(model: str, task: str) -> None:
    """Refuse unknown models and models that do not do ``task``, listing those that do."""
    try:
        cls = registered(model)
    except RestoreError:
        raise RestoreError(f"unknown model '{model}'; models for {task}: {', '.join(names_for_task(task)) or 'none'}")
    if task not in cls.tasks:
        raise RestoreError(
            f"model '{model}' does not support {task}; models for {task}: {', '.join(names_for_task(task)) or 'none'}")


def restorer_options(job: RestoreJob) -> dict[str, object]:
    """The restorer's options from its convenience flags and ``-O KEY=VALUE`` (declared checks happen in the engine).

    A flag or -O key the model does not declare is an error naming the models that do.
    """
    given = {OPTION_FLAGS[flag]: value for flag, value in job.flags.items() if value is not None}
    for key, value in parse_assignments(job.options, " (-O)").items():
        if key in given:
            raise RestoreError(f"option '{key}' given twice (by a flag and by -O)")
        given[key] = value
    if job.adapt_ref is not None:
        given.setdefault("adapt", "external")
        given["adapt_ref"] = read_image(job.adapt_ref).pixels
    declared = registered(job.model).Options.__dataclass_fields__
    for key in given:
        if key not in declared:
            flag = next((f"--{f.replace('_', '-')}" for f, o in OPTION_FLAGS.items() if o == key), f"-O {key}=...")
            if key == "adapt_ref":
                flag = "--adapt-ref"
            takers = sorted(name for name, cls in available().items() if key in cls.Options.__dataclass_fields__)
            raise RestoreError(f"model '{job.model}' does not take {flag} (models that do: {', '.join(takers) or 'none'}; "
                               f"its options: {', '.join(declared) or 'none'})")
    return given


def _restorer(job: RestoreJob, options: dict[str, object]):
    """The model wrapped in its deep-OT tuner (``--tuner``)."""
    restorer = load(job.model, device=job.device, progress=not job.quiet and sys.stderr.isatty(), **options)
    return load_tuner(job.tuner, restorer, job.task, job.perception)


def _say_record(job: RestoreJob, record: dict, single: bool) -> None:
    status, output = record["status"], record["output"]
    if job.device_note and (status != "failed" or not single):  # a single failure stays one line
        _say(job, job.device_note)
        job.device_note = None
    if status == "done":
        if record.get("sigma_estimated"):
            _say(job, f"{Path(record['input']).name}: estimated noise sigma = {sigma_to_cli(record['sigma'])} "
                      f"(0-255 units)")
        _say(job, f"wrote {output}")
    elif status == "skipped":
        _say(job, f"skipped {output} (exists; --overwrite to replace)")
    elif not single:
        tqdm.write(f"error: {record['input']}: {cli_words(_without_path(record['error'] or '', record['input']))}",
                   file=sys.stderr)


def _without_path(error: str, source: str) -> str:
    """The error without the input's path in front: the line names it once."""
    for prefix in (f"{source}: ", f"{Path(source).resolve()}: "):
        if error.startswith(prefix):
            return error[len(prefix):]
    return error


def _say(job: RestoreJob, message: str) -> None:
    if not job.quiet:
        tqdm.write(message, file=sys.stderr)
