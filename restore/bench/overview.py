"""The overview page of a bench folder: one PSNR table per task, methods down, dataset x setting across.

``restore bench`` rewrites ``OVERVIEW.md`` in its output folder after every
run, from all the summaries there, so one page shows every task, dataset and
setting measured so far. Each cell is the mean PSNR (dB) of a method on a
dataset and setting, as in that dataset's own summary (which holds the
protocol, SSIM, timings and command); a blank cell was not run. Nothing is
measured here: it only gathers.
"""
from __future__ import annotations

import json
from pathlib import Path

from restore.bench.cases import TASKS
from restore.io import atomic_write

OVERVIEW = "OVERVIEW.md"
TASK_TITLE = {"denoise": "Denoising", "sr": "Super-resolution (Y channel, border = scale)",
              "deblur": "Deblurring", "inpaint": "Inpainting"}


def load_summaries(folder: Path) -> list[dict]:
    """Every bench summary (``<task>_<dataset>[_cropN].json``) in ``folder``, by task then file name."""
    reports = []
    for path in sorted(folder.glob("*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # not ours, or unreadable: the overview leaves it out
        if isinstance(report, dict) and report.get("protocol", {}).get("task") in TASKS and "summary" in report:
            reports.append(report | {"file": path.with_suffix(".md").name})
    return sorted(reports, key=lambda r: TASKS.index(r["protocol"]["task"]))


def column_label(report: dict, setting: str) -> str:
    """Where a column's numbers come from, e.g. ``[CBSD68 crops](deblur_CBSD68_crop256.md) gaussian:2.0, sigma 2.55``."""
    crop = report["protocol"]["clean"]
    where = report["dataset"] + (" crops" if "crop" in crop else "")
    return f"[{where}]({report['file']}) {setting}"


def task_table(reports: list[dict]) -> str:
    """The Markdown table of one task: one row per method, one column per (dataset, setting)."""
    columns: list[tuple[str, str]] = []  # (label, key)
    cells: dict[tuple[str, str], float] = {}
    inputs: dict[str, float] = {}
    methods: list[str] = []
    for report in reports:
        for setting in report["settings"]:
            key = f"{report['file']}|{setting}"
            columns.append((column_label(report, setting), key))
            for row in report["summary"]:
                if row["setting"] != setting or row.get("psnr") is None:
                    continue
                if row["method"] not in methods:
                    methods.append(row["method"])
                cells[(row["method"], key)] = row["psnr"]
                if row.get("input_psnr") is not None:
                    inputs[key] = row["input_psnr"]
    lines = ["| method | " + " | ".join(label for label, _ in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    if inputs:
        lines.append("| degraded input | " + " | ".join(_cell(inputs.get(key)) for _, key in columns) + " |")
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(_cell(cells.get((method, key))) for _, key in columns) + " |")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def overview(reports: list[dict]) -> str:
    parts = ["# restore bench: PSNR overview (dB)", "",
             "Mean PSNR per method, dataset and setting, gathered from the summaries in this folder by "
             "`restore bench` after each run; each linked summary holds its protocol, SSIM, seconds per "
             "image, machine and command. Blank: not run. Crops: central crops of the first images (see the summary).",
             ""]
    for task in TASKS:
        of_task = [r for r in reports if r["protocol"]["task"] == task]
        if of_task:
            parts += [f"## {TASK_TITLE[task]}", "", task_table(of_task), ""]
    return "\n".join(parts)


def write_overview(folder: Path) -> Path | None:
    """Rewrite ``folder/OVERVIEW.md`` from the bench summaries in ``folder``; None when there are none."""
    reports = load_summaries(folder)
    if not reports:
        return None
    out = folder / OVERVIEW
    atomic_write(out, lambda f: f.write(overview(reports).encode()), what="overview")
    return out
