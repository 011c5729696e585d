"""The settings each output of a batch was made with, and what a rerun does with outputs made otherwise.

Each "done" record of the log carries the settings that decide its pixels
(model, options, operator, tiling, precision, seed, value range; quality and
stripped metadata when set). A rerun skips
an existing output only when the log says it was made with the same settings;
one made otherwise is refused before any work (``overwrite=True`` redoes it).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from restore.batch_inputs import Source
from restore.batch_options import BatchOptions
from restore.errors import RestoreError


def settings_record(o: BatchOptions, model: str, options: dict) -> dict:
    """What decides an output's pixels, as JSON values (device, batch size and progress do not)."""
    values = {"model": model, "task": o.task, "sigma": o.sigma, "kernel": o.kernel, "scale": o.scale,
              "mask": o.mask, "psf_mtf": o.psf_mtf, "sigma_poisson": o.sigma_poisson, "tile": o.tile,
              "overlap": o.overlap, "precision": o.precision, "seed": o.seed, "value_range": o.value_range,
              "options": {k: _jsonable(v) for k, v in sorted(options.items())}}
    # Recorded only when not the default, so that outputs logged before these settings existed still match.
    values.update({k: v for k, v in (("quality", o.quality), ("strip_metadata", o.strip_metadata)) if v})
    return json.loads(json.dumps(values, default=repr))


def earlier_settings(log_path: Path | None) -> dict[Path, dict]:
    """The settings of each output the log says was written (the last record wins); unreadable lines are skipped."""
    found: dict[Path, dict] = {}
    if log_path is None or not log_path.is_file():
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


def changed(source: Source, settings: dict, earlier: dict[Path, dict]) -> str | None:
    """How the settings ``source``'s existing output was made with differ from this run's (None: they do not)."""
    before = earlier.get(source.output.resolve())
    if before is None or before == settings:
        return None
    diffs = [f"{k} {before.get(k)!r} -> {settings.get(k)!r}" for k in settings if before.get(k) != settings.get(k)]
    return ", ".join(diffs) or "settings differ"


def refuse_changed(sources: list[Source], settings: dict, earlier: dict[Path, dict], overwrite: bool) -> None:
    """Raise when existing outputs were made with other settings (all known up front)."""
    if overwrite:
        return
    diffs = [(s, d) for s in sources if s.error is None and s.output.exists()
             for d in [changed(s, settings, earlier)] if d is not None]
    if diffs:
        first, diff = diffs[0]
        raise RestoreError(f"{len(diffs)} existing output(s) were made with other settings "
                           f"({first.output}: {diff}); pass overwrite=True to redo them, or choose another output")


def _jsonable(value: object) -> object:
    # A reference image given as an option is recorded by its shape, not its pixels.
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}"
    return value
