"""Does the fast (bf16 autocast) training step learn what the fp32 step learns? Loss curves side by side.

    python benchmarks/studies/training_curves.py --data ../shared/data --model cae-a0483 --steps 400 \\
        --out benchmarks/results/training_curves_cae

From the shipped weights, the same batches and the same noise (seeded per step) through the fp32
step and the fast step, Adam at the campaign's rate; the table gives the mean training loss per
window of steps for both and the validation (the campaign's) of both at the end.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from restore.training import cae as cae_training
from restore.training import lidia as lidia_training
from restore.training.campaign.queue import campaign_jobs, select
from restore.training.data import WeightAverage


def curve(job, fast: bool, batches: list[torch.Tensor]) -> tuple[list[float], dict]:
    model = job.shipped_model()
    if fast:
        model = job.prepare(model)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=job.recipe.lr)
    # Raw weights right after a step are noisy (fresh moments at full rate): validate a short average too.
    average = WeightAverage(model, 0.99)
    losses = []
    for i, x in enumerate(batches):
        torch.manual_seed(i)
        gen = torch.Generator().manual_seed(i)
        if job.name.startswith("cae"):
            loss = cae_training.training_loss(model, x, job.alpha, fast=fast)[0]
        else:
            loss = lidia_training.training_loss(model, x, job.sigma / 255.0, gen, fast=fast)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), job.recipe.clip)
        opt.step()
        average.update(model)
        losses.append(float(loss.detach()))
    return losses, {"raw": job.validate(model.eval()), "average 0.99": job.validate(average.model)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    job = select(campaign_jobs(args.data.resolve()), [args.model])[0]
    sampler = job.sampler(torch.device("cpu"), 0, {})
    batches = [sampler(job.recipe.batch) for _ in range(args.steps)]
    rows = {mode: curve(job, mode == "fast", batches) for mode in ("fp32", "fast")}
    lines = [f"# Training loss, fp32 step against the fast step: {args.model}", "",
             f"{args.steps} steps from the shipped weights, same batches and noise, Adam lr {job.recipe.lr}. "
             f"`python benchmarks/studies/training_curves.py --data ../shared/data --model {args.model} --steps {args.steps} "
             f"--out {args.out}`", "",
             "| steps | fp32 mean loss | fast mean loss | difference |", "|---|---:|---:|---:|"]
    fp32, fast = rows["fp32"][0], rows["fast"][0]
    for start in range(0, args.steps, args.window):
        a = sum(fp32[start : start + args.window]) / len(fp32[start : start + args.window])
        b = sum(fast[start : start + args.window]) / len(fast[start : start + args.window])
        lines.append(f"| {start + 1}-{min(start + args.window, args.steps)} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    lines += ["", f"Validation after {args.steps} steps: fp32 {rows['fp32'][1]}; fast {rows['fast'][1]}."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    curves = {k: {"losses": v[0], "validation": v[1]} for k, v in rows.items()}
    args.out.with_suffix(".json").write_text(json.dumps(curves) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
