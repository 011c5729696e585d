"""``campaign status``: per model, steps, CPU-hours, the last validation and the shipped weights' score."""
from __future__ import annotations

from pathlib import Path

from restore.training.campaign.job import MODELS_DIR, Job
from restore.training.campaign.state import read_bookkeeping

CARD_BEGIN = "<!-- campaign-status:begin (written by `python -m restore.training.campaign release`) -->"
CARD_END = "<!-- campaign-status:end -->"


def _score(doc: dict | None) -> str:
    if not doc:
        return "not measured"
    skip = {"sha256", "steps", "cpu_seconds", "images", "loss"}
    figures = ", ".join(f"{k} {v}" for k, v in doc.items() if k not in skip)
    return f"loss {doc['loss']}" + (f" ({figures})" if figures else "")


def status_rows(jobs: list[Job], models_dir: Path = MODELS_DIR) -> list[dict]:
    """One dict per job: what its saved state says (the shipped budget alone when it has none)."""
    rows = []
    for job in jobs:
        doc = read_bookkeeping(job.state_path(models_dir))
        if doc is None:
            rows.append({"model": job.name, "steps": job.budget.steps, "cpu_hours": job.budget.cpu_seconds / 3600,
                         "runs": 0, "campaign_steps": 0, "last": None, "shipped": None, "releases": 0})
            continue
        rows.append({"model": job.name, "steps": doc["steps"], "cpu_hours": doc["cpu_seconds"] / 3600,
                     "runs": len(doc["runs"]), "campaign_steps": sum(r["steps"] for r in doc["runs"]),
                     "last": doc["last_validation"], "shipped": doc["shipped_validation"],
                     "releases": len(doc["releases"])})
    return rows


def status_table(jobs: list[Job], models_dir: Path = MODELS_DIR) -> str:
    """The status as a Markdown table (printed by ``status``, pasted into the model cards by ``release``)."""
    lines = ["| model | steps | CPU-hours | campaign runs (steps) | releases | last validation | shipped weights' validation |",
             "|---|---:|---:|---:|---:|---|---|"]
    for r in status_rows(jobs, models_dir):
        last = _score(r["last"]) + (f" at step {r['last']['steps']:,}" if r["last"] else "")
        lines.append(f"| `{r['model']}` | {r['steps']:,} | {r['cpu_hours']:.2f} | {r['runs']} ({r['campaign_steps']:,}) | "
                     f"{r['releases']} | {last} | {_score(r['shipped'])} |")
    return "\n".join(lines)


def card_section(jobs: list[Job], models_dir: Path = MODELS_DIR) -> str:
    """The campaign section of a model card, between its markers."""
    return "\n".join([
        CARD_BEGIN,
        "Cumulative budget of each model (its shipped recipe plus every campaign run; one CPU-hour is one core",
        "for an hour) and its validation on BSDS500 val minus the 68 CBSD68 scenes (32 images; loss: the",
        "autoencoders' rate-distortion loss alpha 255^2 MSE + bpp with real rounding, the variance decoder's",
        "Gaussian NLL, LIDIA's -PSNR). `python -m restore.training.campaign status` prints the same table.",
        "",
        status_table(jobs, models_dir),
        CARD_END,
    ])


def write_card_section(card: Path, section: str) -> None:
    """Replace the campaign section of ``card`` (README.md), or append it under its own heading."""
    text = card.read_text(encoding="utf-8")
    if CARD_BEGIN in text and CARD_END in text:
        head, rest = text.split(CARD_BEGIN, 1)
        tail = rest.split(CARD_END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n## Training campaign\n\n" + section + "\n"
    card.write_text(text, encoding="utf-8")
