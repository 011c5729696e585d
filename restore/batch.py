"""``restore.run``: restore many images in one call, resumably, logging every input as it finishes.

>>> import restore
>>> report = restore.run("photos/**/*.png", task="denoise", model="lidia", sigma=25,
...                      out_dir="out/", device="cuda", batch_size=8)  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP
47 done, 0 skipped, 3 failed (log: out/restore-log.jsonl)
"""
from __future__ import annotations

import inspect
import json
import numbers
import os
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter, time
from typing import Any

import torch
from tqdm import tqdm

from restore.batch_inputs import Source, plan_sources, read_source
from restore.batch_report import BatchReport, JobLog
from restore.commands.operator_options import build_operator, check_denoise_sigma, load_mask, validate_options
from restore.commands.restore_images import _resize_alpha, check_device, check_model
from restore.errors import RestoreError
from restore.io import IMAGE_EXTENSIONS, MAX_PIXELS, ImageData, check_output, read_image, remove_stale_temps, write_image
from restore.operators import TASKS
from restore.operators.noise_level import estimate_sigma
from restore.pipeline import PRECISIONS, Pipeline, min_tile
from restore.restorers import Restorer, available, load

LOG_NAME = "restore-log.jsonl"
# What one bad input may raise, whatever its type: it is recorded as failed and the batch goes on.
INPUT_ERRORS = (Exception,)


@dataclass
class _Options:
    """What every input of the job is restored with."""

    task: str
    model: str
    out_dir: Path
    sigma: float | None
    kernel: str | None
    scale: int | None
    mask: str | None
    device: str
    batch_size: int
    tile: int
    precision: str
    seed: int
    overwrite: bool
    value_range: float | None = None
    max_pixels: float | None = MAX_PIXELS


@dataclass
class _Ready:
    """An input read and waiting for its restorer call."""

    source: Source
    image: ImageData
    sigma: float  # 0-255 units: given, estimated (denoise) or 0
    key: tuple  # inputs with equal keys run with the same operator and may share restorer calls
    seconds: float


def run(
    inputs: Any,
    *,
    task: str,
    model: str,
    out_dir: str | os.PathLike,
    sigma: float | None = None,
    kernel: str | None = None,
    scale: int | None = None,
    mask: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    tile: int = 512,
    precision: str = "fp32",
    seed: int = 0,
    overwrite: bool = False,
    log: str | os.PathLike | None = None,
    progress: bool = True,
    value_range: float | None = None,
    max_pixels: float | None = MAX_PIXELS,
    **model_options: Any,
) -> BatchReport:
    """Restore a batch of images into ``out_dir``, skipping those already done.

    Every option is checked before any work: bad ones raise ``RestoreError``.
    After that one bad input (corrupt, unreadable, wrong channels...) is
    recorded as failed with its one-line error and the batch goes on. Each
    result is written atomically as soon as it is ready, with the input's bit
    depth and alpha, and one JSON line per input is appended (and flushed) to
    the log, so a killed run keeps what finished. A rerun skips every input whose
    output exists (no restorer call) and retries the failed ones (they have none).
    Each output's settings (model, task, sigma, kernel, scale, mask, tile,
    precision, seed, value range, model options) are logged with it: an existing
    output that the log says was made with other settings is refused before any
    work (``overwrite=True`` redoes it) rather than silently kept. Temp files that
    killed runs left beside the outputs are removed (``report.removed``).

    Consecutive inputs of one size that run with the same operator (a given
    sigma, kernel, scale or mask file) go through ``Pipeline.run_batch``: the
    tiles of up to ``batch_size`` images share restorer calls of up to
    ``batch_size`` tiles, with the same pixels as one by one. Restorers that
    prepare each image on its own (LIDIA centres on the image mean; adaptation)
    and images with an estimated sigma still run one by one, their tiles batched.

    Args:
        inputs: a glob (``"photos/**/*.png"``, ``**`` recursive), a folder (its images,
            not recursive), one image path, a list of paths, or an iterable of
            images: numpy H x W [x C] (uint8, uint16 or float in [0, 1]; a 2nd/4th
            channel is alpha) or torch C x H x W / 1 x C x H x W floats in [0, 1].
        task: "denoise", "deblur", "sr" or "inpaint".
        model: a registered restorer (``restore.available()``) that does ``task``.
        out_dir: where results go: a file keeps its name, a glob's or folder's
            sub-folders are kept; arrays become ``image_00000.png``, ... (16-bit for
            uint16 arrays). A glob takes no file inside ``out_dir`` (an earlier run's
            outputs), and an output that would be an input is refused.
        sigma: noise level in 0-255 units; for denoise, estimated per image when None.
        kernel: deblur kernel spec (``gaussian:STD``, ``motion:LENGTH,ANGLE``, ``FILE.npy``).
        scale: sr factor (2, 3 or 4; default 4).
        mask: inpaint mask: an image file (white = observed) or ``random:FRACTION``,
            drawn per image from ``seed`` and the output's name (the same on a rerun).
        device: "cpu", "cuda", "cuda:1", ...
        batch_size: images per group and tiles per restorer call.
        tile: tile side in input pixels (0: whole images).
        precision: "fp32", "fp16" or "bf16".
        seed: seeds stochastic restorers and random masks.
        overwrite: restore inputs whose output exists instead of skipping them.
        log: the JSON-lines log (default ``out_dir / "restore-log.jsonl"``), appended to.
        progress: show a progress bar over the inputs.
        value_range: the stored value meaning full scale in the input files (e.g. 4095 for
            12-bit data in 16 bits, 255 for float TIFFs in 0-255); outputs are written back
            in the same units. Default: the type's maximum, 1.0 for floats.
        max_pixels: refuse input files with more pixels than this, from their header
            before decoding (None: no limit).
        **model_options: the restorer's own options (e.g. ``samples=50`` for vble).

    Returns:
        A ``BatchReport``: the records and the done / skipped / failed counts.

    Raises:
        RestoreError: a bad option or inputs that cannot be planned (nothing matches,
            two inputs sharing an output, an output over an input), before any work.
    """
    started = time()
    opts = _Options(task, model, Path(out_dir), sigma, kernel, scale, None if mask is None else os.fspath(mask),
                    device, batch_size, tile, precision, seed, overwrite, value_range, max_pixels)
    _check_options(opts, model_options)
    log_path = _log_path(opts.out_dir, log)
    sources, count = plan_sources(inputs, opts.out_dir)
    settings = _settings(opts, model_options)
    earlier = _earlier_settings(log_path)
    if count is not None:
        sources = list(sources)
        _refuse_changed_settings(sources, settings, earlier, opts)
    restorer = load(model, device=device, progress=progress, **model_options)
    if opts.tile and opts.tile < min_tile(restorer.halo):
        raise RestoreError(f"tile={opts.tile} is too small for model '{model}' (halo {restorer.halo} pixels): "
                           f"use tile={min_tile(restorer.halo)} or more, or tile=0 for whole images")
    report = BatchReport(log=log_path)
    with JobLog(log_path, report) as journal, tqdm(total=count, disable=not progress, unit="img", desc=task) as bar:
        batch = _Batch(opts, restorer, journal, bar, settings, earlier, started, report)
        for source in sources:
            batch.add(source)
        batch.flush()
    return report


# ------------------------------------------------------------------ checks before any work


def _check_options(opts: _Options, model_options: dict[str, Any]) -> None:
    if opts.task not in TASKS:
        raise RestoreError(f"task must be one of {', '.join(TASKS)}, got {opts.task!r}")
    check_model(opts.model, opts.task)
    for name in ("sigma", "scale", "value_range", "max_pixels"):
        value = getattr(opts, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise RestoreError(f"{name} must be a number, got {value!r}")
    if opts.value_range is not None and not 0 < opts.value_range < float("inf"):
        raise RestoreError(f"value_range must be a number > 0, got {opts.value_range!r}")
    if opts.max_pixels is not None and not opts.max_pixels > 0:
        raise RestoreError(f"max_pixels must be a number > 0 (or None: no limit), got {opts.max_pixels!r}")
    with _keyword_names():
        validate_options(opts.task, sigma_255=opts.sigma, kernel=opts.kernel, scale=opts.scale, mask=opts.mask)
        check_denoise_sigma(opts.task, opts.sigma)
        if opts.mask is not None:
            # A bad fraction or a missing or corrupt mask file fails now, not once per image.
            if opts.mask.startswith("random:"):
                load_mask(opts.mask, (8, 8), torch.Generator())
            else:
                read_image(opts.mask)
    check_device(opts.device)
    _check_count("batch_size", opts.batch_size, 1)
    _check_count("tile", opts.tile, 0)
    _check_count("seed", opts.seed, 0)
    if opts.precision not in PRECISIONS:
        raise RestoreError(f"precision must be one of {', '.join(PRECISIONS)}, got {opts.precision!r}")
    if opts.out_dir.exists() and not opts.out_dir.is_dir():
        raise RestoreError(f"out_dir {opts.out_dir} is a file; expected a folder")
    _check_model_options(opts.model, model_options)
    halo = int(getattr(available()[opts.model], "halo", 0) or 0)
    if opts.tile and opts.tile < min_tile(halo):
        raise RestoreError(f"tile={opts.tile} is too small for model '{opts.model}' (halo {halo} pixels): "
                           f"use tile={min_tile(halo)} or more, or tile=0 for whole images")


# ------------------------------------------------------------------ the settings each output was made with


def _settings(opts: _Options, model_options: dict[str, Any]) -> dict:
    """What decides an output's pixels, as JSON values (device and batch size do not)."""
    values = {"model": opts.model, "task": opts.task, "sigma": opts.sigma, "kernel": opts.kernel, "scale": opts.scale,
              "mask": opts.mask, "tile": opts.tile, "precision": opts.precision, "seed": opts.seed,
              "value_range": opts.value_range, "options": dict(sorted(model_options.items()))}
    return json.loads(json.dumps(values, default=repr))


def _earlier_settings(log_path: Path) -> dict[Path, dict]:
    """The settings of each output the log says was written (the last record wins); unreadable lines are skipped."""
    found: dict[Path, dict] = {}
    if not log_path.is_file():
        return found
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("status") == "done" and isinstance(record.get("settings"), dict):
            found[Path(record["output"]).resolve()] = record["settings"]
    return found


def _changed(source: Source, settings: dict, earlier: dict[Path, dict]) -> str | None:
    """How the settings ``source``'s existing output was made with differ from this run's (None: they do not)."""
    before = earlier.get(source.output.resolve())
    if before is None or before == settings:
        return None
    diffs = [f"{k} {before.get(k)!r} -> {settings.get(k)!r}" for k in settings if before.get(k) != settings.get(k)]
    return ", ".join(diffs) or "settings differ"


def _refuse_changed_settings(sources: list[Source], settings: dict, earlier: dict[Path, dict], opts: _Options) -> None:
    if opts.overwrite:
        return
    changed = [(s, d) for s in sources if s.error is None and s.output.exists()
               for d in [_changed(s, settings, earlier)] if d is not None]
    if changed:
        first, diff = changed[0]
        raise RestoreError(f"{len(changed)} existing output(s) in {opts.out_dir} were made with other settings "
                           f"({first.output}: {diff}); pass overwrite=True to redo them, or choose another out_dir")


@contextmanager
def _keyword_names() -> Iterator[None]:
    """Name ``run``'s keywords, not CLI flags, in the errors of the option checks it shares with the CLI."""
    try:
        yield
    except RestoreError as e:
        message = re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), str(e))
        raise RestoreError(message) from None


def _check_count(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise RestoreError(f"{name} must be an integer >= {least}, got {value!r}")


def _check_model_options(model: str, options: dict[str, Any]) -> None:
    """Refuse options the restorer's constructor does not name (most would swallow them silently)."""
    params = inspect.signature(available()[model].__init__).parameters
    named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    named -= {"self", "device", "progress"}
    unknown = sorted(set(options) - named)
    if unknown:
        raise RestoreError(f"model '{model}' takes no option {', '.join(unknown)}; "
                           f"its options: {', '.join(sorted(named)) or 'none'}")


def _log_path(out_dir: Path, log: str | os.PathLike | None) -> Path:
    path = out_dir / LOG_NAME if log is None else Path(log)
    if path.suffix.lower() in IMAGE_EXTENSIONS or path.is_dir():
        raise RestoreError(f"log {path} must be a JSON-lines file path (e.g. {LOG_NAME}), not an image or a folder")
    return path


# ------------------------------------------------------------------ the work


class _Batch:
    """Reads inputs, groups those that may share restorer calls, restores, writes and logs them."""

    def __init__(self, opts: _Options, restorer: Restorer, journal: JobLog, bar: tqdm, settings: dict,
                 earlier: dict[Path, dict], started: float, report: BatchReport) -> None:
        self.opts, self.restorer, self.journal, self.bar = opts, restorer, journal, bar
        self.settings, self.earlier, self.started, self.report = settings, earlier, started, report
        self.pending: list[_Ready] = []

    def add(self, source: Source) -> None:
        """Skip, fail or queue one input (restoring the queue when it cannot take it)."""
        for path in remove_stale_temps([source.output], before=self.started):
            self.report.removed.append(path)
            if not self.bar.disable:
                tqdm.write(f"removed {path} (temp file of an interrupted run)")
        if source.error is not None:
            self._record(source, "failed", error=source.error)
            return
        if source.output.exists() and not self.opts.overwrite:
            diff = _changed(source, self.settings, self.earlier)
            if diff is not None:  # only for a lazy iterable: a known list was refused before any work
                self._record(source, "failed", error=f"{source.output} was made with other settings ({diff}); "
                                                     f"pass overwrite=True to redo it")
                return
            self._record(source, "skipped")
            return
        start = perf_counter()
        try:
            ready = self._read(source, start)
        except INPUT_ERRORS as e:
            self._record(source, "failed", seconds=perf_counter() - start, error=_one_line(e))
            return
        if self.pending and (len(self.pending) == self.opts.batch_size or self.pending[0].key != ready.key):
            self.flush()
        self.pending.append(ready)

    def flush(self) -> None:
        """Restore and write the queued inputs: together, or one by one when that fails (to blame the right one)."""
        group, self.pending = self.pending, []
        if not group:
            return
        start = perf_counter()
        try:
            images = self._restore(group)
        except INPUT_ERRORS as e:
            if len(group) > 1:
                for ready in group:
                    self.pending = [ready]
                    self.flush()
                return
            self._record(group[0].source, "failed", group[0].sigma, group[0].seconds + perf_counter() - start,
                         _one_line(e))
            return
        share = (perf_counter() - start) / len(group)
        for ready, image in zip(group, images):
            self._write(ready, image, share)

    def _read(self, source: Source, start: float) -> _Ready:
        image = read_source(source, value_range=self.opts.value_range, max_pixels=self.opts.max_pixels)
        # What the output's format cannot hold fails now, before restoring.
        check_output(source.output, image.bit_depth, channels=image.pixels.shape[1], value_range=image.value_range)
        sigma = self.opts.sigma
        if sigma is None and self.opts.task == "denoise":
            sigma = estimate_sigma(image.pixels) * 255
        mask = self.opts.mask
        # A random mask is the image's own; a mask file is shared by every image of its size.
        mask_key = source.output.name if mask is not None and mask.startswith("random:") else mask
        key = (tuple(image.pixels.shape), sigma, mask_key)
        return _Ready(source, image, float(sigma or 0.0), key, perf_counter() - start)

    def _restore(self, group: list[_Ready]) -> list[torch.Tensor]:
        """The restored images of ``group`` (inputs of equal key) from shared restorer calls."""
        first = group[0]
        shape = tuple(first.image.pixels.shape[-2:])
        mask = load_mask(self.opts.mask, shape, self._mask_generator(first.source))
        op = build_operator(self.opts.task, sigma_255=first.sigma, kernel=self.opts.kernel, scale=self.opts.scale,
                            mask=mask)
        pipe = Pipeline(self.restorer, op, tile=self.opts.tile, batch_size=self.opts.batch_size,
                        device=self.opts.device, precision=self.opts.precision, seed=self.opts.seed)
        result = pipe.run_batch(torch.cat([r.image.pixels for r in group]))
        return list(result.image.split(1))

    def _mask_generator(self, source: Source) -> torch.Generator:
        # Seeded by the output's name, not the input's place in the run, so that a rerun draws the same mask.
        return torch.Generator().manual_seed(self.opts.seed * 1_000_003 + zlib.crc32(source.output.name.encode()))

    def _write(self, ready: _Ready, image: torch.Tensor, share: float) -> None:
        start = perf_counter()
        source = ready.source
        try:
            alpha = _resize_alpha(ready.image, image.shape[-2:])
            write_image(source.output, image, bit_depth=ready.image.bit_depth, alpha=alpha,
                        overwrite=self.opts.overwrite, protect=[source.path] if source.path is not None else [],
                        value_range=ready.image.value_range)
        except INPUT_ERRORS as e:
            self._record(source, "failed", ready.sigma, ready.seconds + share + perf_counter() - start, _one_line(e))
            return
        self._record(source, "done", ready.sigma, ready.seconds + share + perf_counter() - start)

    def _record(self, source: Source, status: str, sigma: float | None = None, seconds: float = 0.0,
                error: str | None = None) -> None:
        self.journal.write({
            "input": source.label, "output": str(source.output), "status": status,
            "sigma": None if sigma is None else round(sigma, 3), "seconds": round(seconds, 4),
            "error": error, "model": self.opts.model, "task": self.opts.task,
            **({"settings": self.settings} if status == "done" else {}),
        })
        self.bar.update(1)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__
