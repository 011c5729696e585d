"""A benchmark's summary: mean scores per (setting, method) and the Markdown page that shows them."""
from __future__ import annotations

import json
from statistics import fmean

from restore.bench.published import ELSEWHERE, Published

UNRECORDED = "machine not recorded"


def _mean(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None]
    # A column is reported only when every image has it (LPIPS needs a backbone that may be absent).
    return fmean(values) if values and len(values) == len(records) else None


def summarise(records: list[dict], settings: list[str], methods: list[str]) -> list[dict]:
    """One row per (setting, method) with images, mean PSNR / SSIM / PSNR RGB / LPIPS, seconds per image."""
    rows = []
    for setting in settings:
        for method in methods:
            rs = [r for r in records if r["setting"] == setting and r["method"] == method and "error" not in r]
            if not rs:
                continue
            seconds = sum(r["seconds"] for r in rs)
            rows.append({
                "setting": setting, "method": method, "images": len(rs),
                "psnr": _mean(rs, "psnr"), "ssim": _mean(rs, "ssim"), "psnr_rgb": _mean(rs, "psnr_rgb"),
                "lpips": _mean(rs, "lpips"), "input_psnr": _mean(rs, "input_psnr"),
                "seconds_per_image": seconds / len(rs),
                "mp_per_s": sum(r["megapixels"] for r in rs) / seconds if seconds > 0 else None,
                "evaluations": rs[0].get("evaluations"),
                # A resumed run may have measured some images elsewhere: their seconds do not compare.
                "machines": sorted({r.get("machine") or UNRECORDED for r in rs}),
            })
    return rows


def _machines_note(rows: list[dict]) -> list[str]:
    """A warning under a table whose timings were measured on more than one machine (a run resumed elsewhere)."""
    machines = {m for r in rows for m in r.get("machines", [])}
    if len(machines) < 2:
        return []
    per_method = "; ".join(f"{r['method']}: {' + '.join(r['machines'])}" for r in rows)
    return ["", f"Timings from more than one machine, not comparable across them: {per_method}."]


def _f(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _table(rows: list[dict], task: str) -> list[str]:
    rgb = " PSNR RGB |" if task == "sr" else ""
    head = f"| method | images | PSNR (dB) | SSIM |{rgb} LPIPS | s / image | evaluations |"
    lines = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    if rows and rows[0]["input_psnr"] is not None:
        lines.append(f"| degraded input | {rows[0]['images']} | {rows[0]['input_psnr']:.2f} | — |"
                     + (" — |" if task == "sr" else "") + " — | — | — |")
    for r in rows:
        rgb = f" {_f(r['psnr_rgb'], '.2f')} |" if task == "sr" else ""
        lines.append(f"| {r['method']} | {r['images']} | {_f(r['psnr'], '.2f')} | {_f(r['ssim'], '.4f')} |{rgb} "
                     f"{_f(r['lpips'], '.4f')} | {r['seconds_per_image']:.3f} | {_f(r['evaluations'], '')} |")
    return lines


def _published(published: Published | None, setting: str, task: str) -> list[str]:
    if published is None:
        return ["", f"Published reference: {ELSEWHERE[task]}."]
    rows = [(m, v[setting]) for m, v in published.rows.items() if setting in v]
    if not rows:
        return ["", f"Published reference: none at {setting} ({published.source})."]
    lines = ["", f"Published, not run here ({published.source}):", "", "| method (published) | PSNR (dB) |", "|---|---:|"]
    return lines + [f"| {m} | {v:.2f} |" for m, v in rows]


def markdown(report: dict) -> str:
    """The Markdown page of a report: one table per setting, reference rows, protocol, machine, command."""
    proto, machine = report["protocol"], report["machine"]
    lines = [f"# restore bench: {proto['task']} on {report['dataset']}", "",
             f"{len(report['images'])} images; {report['date']}, commit `{report['commit']}`, {machine['cpu']} "
             f"({machine['cores']} cores, {machine['torch_threads']} torch threads, device {machine['device']}).", "",
             f"Dataset: `{report['dataset_path']}`. Command: `{report['command']}`", ""]
    for setting in report["settings"]:
        lines += [f"## {setting}", ""]
        rows = [r for r in report["summary"] if r["setting"] == setting]
        lines += _table(rows, proto["task"]) + _machines_note(rows)
        lines += _published(report["published"], setting, proto["task"])
        lines.append("")
    if report.get("not_run"):
        lines += ["## Not run (the method refuses the setting)", ""]
        lines += [f"- {what}: {why}" for what, why in report["not_run"].items()] + [""]
    if report["failures"]:
        lines += ["## Failed runs (not in the means)", ""]
        lines += [f"- {r['image']} {r['setting']} {r['method']}: {r['error']}" for r in report["failures"]] + [""]
    lines += ["## Protocol", ""] + [f"- **{k}**: {v}" for k, v in proto.items()]
    lines += ["", "## Methods", ""] + [f"- **{k}**: {v}" for k, v in report["methods"].items()]
    lines += ["", "## Machine", "", "```", json.dumps(machine, indent=2), "```", ""]
    return "\n".join(lines)
