"""What resuming from the compact autoencoder state costs: fp16 weight average only, no optimiser moments.

    python benchmarks/studies/campaign_resume.py --data ../shared/data --steps 4000 --resume-at 1000 \
        --out benchmarks/results/campaign_resume

From the shipped cae-a0483, three runs of ``--steps`` campaign steps each, validated on the campaign's
32 validation crops (rate-distortion loss with real rounding):
A: uninterrupted; B: the same seeds, saved after ``--resume-at`` steps in the compact form the
campaign commits (fp16 weights, no optimiser moments, no weight average: a fresh clone has no
``.local/`` average) and resumed from it (fresh moments, 100-step warm-up, the average restarted
from the weights); C: uninterrupted with other seeds (the run-to-run spread that a difference has
to exceed to be measurable). The candidate validated is the weight average (EMA 0.999), as released.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from restore.training.campaign.queue import campaign_jobs, select
from restore.training.campaign.state import load_state, save_state
from restore.training.campaign.trainer import Trainer, fresh_state


def train(job, steps: int, seed: int, resume_at: int | None, models: Path) -> dict:
    state = fresh_state(job)
    state.runs = [{"steps": 0, "cpu_seconds": 0.0}] * seed  # the generator seeds from the run count
    cache: dict = {}
    trainer = Trainer(job, state, torch.device("cpu"), cache)
    for i in range(steps):
        if resume_at is not None and i == resume_at:
            save_state(trainer.to_state(), job.state_path(models))
            trainer = Trainer(job, load_state(job.state_path(models)), torch.device("cpu"), cache)
        trainer.step()
    return job.validate(trainer.average.model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--resume-at", type=int, default=None, help="default: half-way")
    ap.add_argument("--no-control", action="store_true", help="skip run C (the seed-to-seed spread)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    job = select(campaign_jobs(args.data.resolve()), ["cae-a0483"])[0]
    resume_at = args.resume_at if args.resume_at is not None else args.steps // 2
    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            "A uninterrupted": train(job, args.steps, 0, None, Path(tmp)),
            f"B resumed at step {resume_at} from the compact state": train(job, args.steps, 0, resume_at, Path(tmp)),
        }
        if not args.no_control:
            rows["C uninterrupted, other seeds"] = train(job, args.steps, 1, None, Path(tmp))
        shipped = job.validate(job.shipped_model())
    a = rows["A uninterrupted"]["loss"]
    lines = ["# Resuming an autoencoder from its compact campaign state", "",
             f"cae-a0483, {args.steps} steps from the shipped weights (validation of the shipped weights: loss "
             f"{shipped['loss']}, {shipped['psnr']} dB, {shipped['bpp']} bpp). "
             f"`python benchmarks/studies/campaign_resume.py --data ../shared/data --steps {args.steps} --resume-at {resume_at} "
             f"{'--no-control ' if args.no_control else ''}--out {args.out}`", "",
             "| run | RD loss | PSNR (dB) | bpp | loss - A |", "|---|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['loss']} | {r['psnr']} | {r['bpp']} | {r['loss'] - a:+.5f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"steps": args.steps, "resume_at": resume_at, "rows": rows,
                                                         "shipped": shipped}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
