"""Cost of one LIDIA training step, plain fp32 vs the fast path, and whether the fast path learns the same.

Times ``restore.training.lidia.training_loss`` + backward + Adam step on
batches of 56x56 crops (random flips/transposes, ``random_batch``), counts the
step's FLOPs with ``torch.utils.flop_counter.FlopCounterMode`` (forward +
backward products; the patch search's convolutions included) and, with
``--curve N``, trains two copies from the same initial weights on the same
batches and noise for N steps, fp32 and fast, and reports both loss curves.

Example:
    python benchmarks/studies/lidia_training_speed.py --data ../shared/data/Train400 --threads 1 \\
        --steps 5 --curve 40 --out benchmarks/results/lidia_training_speed
"""
from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from restore.bench.provenance import cpu_model, git_commit
from restore.nets.lidia import Lidia, LidiaConfig
from restore.training.data import random_batch, training_images
from restore.training.lidia import training_loss


def step(model, opt, clean, sigma, gen, fast) -> float:
    loss = training_loss(model, clean, sigma, gen, fast=fast)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", required=True, help="training image folders")
    ap.add_argument("--color", choices=["gray", "color"], default="gray")
    ap.add_argument("--sigma", type=float, default=25.0, help="0-255 units")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=56)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per mode (after one warm-up)")
    ap.add_argument("--curve", type=int, default=0, help="steps of the fp32-vs-fast loss-curve check")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="output path without extension (.json, .md)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = LidiaConfig.gray() if args.color == "gray" else LidiaConfig.color()
    images = training_images(args.data, cfg.channels, args.crop)
    sigma = args.sigma / 255
    torch.manual_seed(0)
    init = Lidia(cfg).train()
    rows = {}
    for fast in (False, True):
        model = copy.deepcopy(init)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        rng, gen = random.Random(0), torch.Generator().manual_seed(0)
        step(model, opt, random_batch(images, args.batch, args.crop, rng), sigma, gen, fast)
        with FlopCounterMode(display=False) as counter:
            step(model, opt, random_batch(images, args.batch, args.crop, rng), sigma, gen, fast)
        times = []
        for _ in range(args.steps):
            clean = random_batch(images, args.batch, args.crop, rng)
            t0 = time.perf_counter()
            step(model, opt, clean, sigma, gen, fast)
            times.append(time.perf_counter() - t0)
        sec = statistics.median(times)
        gflop = counter.get_total_flops() / 1e9
        rows["fast" if fast else "fp32"] = {
            "seconds_per_step": sec, "ms_per_sample": 1000 * sec / args.batch, "gflop_per_step": gflop,
            "gflop_per_s": gflop / sec, "times": times,
        }
        print(f"{'fast' if fast else 'fp32'}: {1000 * sec / args.batch:.0f} ms/sample, {gflop:.1f} GFLOP/step, "
              f"{gflop / sec:.1f} GFLOP/s", flush=True)
    curves = {}
    if args.curve:
        for fast in (False, True):
            model = copy.deepcopy(init)
            opt = torch.optim.Adam(model.parameters(), lr=2e-3)
            rng, gen = random.Random(1), torch.Generator().manual_seed(1)
            curves["fast" if fast else "fp32"] = [
                step(model, opt, random_batch(images, args.batch, args.crop, rng), sigma, gen, fast)
                for _ in range(args.curve)
            ]
        a, b = curves["fp32"], curves["fast"]
        w = max(1, len(a) // 4)
        print(f"loss curve, mean of the last {w} steps: fp32 {statistics.mean(a[-w:]):.4f}, fast {statistics.mean(b[-w:]):.4f}; "
              f"max |diff| per step {max(abs(x - y) for x, y in zip(a, b)):.4f}", flush=True)
    if args.out:
        doc = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
               "cpu": cpu_model(), "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows, "curves": curves}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
        speed = rows["fp32"]["ms_per_sample"] / rows["fast"]["ms_per_sample"]
        md = [f"# LIDIA training step ({args.color}, batch {args.batch} x {args.crop}x{args.crop}, {args.threads} thread)", "",
              f"`{' '.join(sys.argv)}` — {doc['date']}, commit {doc['commit']}, {doc['cpu']}", "",
              "| mode | ms / sample | GFLOP / step | GFLOP/s |", "|---|---:|---:|---:|"]
        md += [f"| {k} | {r['ms_per_sample']:.0f} | {r['gflop_per_step']:.1f} | {r['gflop_per_s']:.1f} |"
               for k, r in rows.items()]
        md += ["", f"Speed-up per sample: {speed:.2f}x."]
        if curves:
            md += ["", "Loss curve (log10 MSE, model units), same initial weights, batches and noise:", "",
                   "| step | fp32 | fast |", "|---:|---:|---:|"]
            md += [f"| {i + 1} | {x:.4f} | {y:.4f} |" for i, (x, y) in enumerate(zip(curves["fp32"], curves["fast"]))
                   if (i + 1) % max(1, len(curves["fp32"]) // 10) == 0]
        args.out.with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
