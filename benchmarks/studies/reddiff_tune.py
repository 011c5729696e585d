"""Tune RED-Diff's (lambda, lr) per task on BSDS500 val images that are not CBSD68 scenes.

    python benchmarks/studies/reddiff_tune.py --dataset ../shared/data/BSDS500/val --limit 4 --crop 128 \\
        --out benchmarks/results/reddiff_tune

Per task a coarse grid of (lambda, lr) runs at ``--steps`` steps on the central
crops of the first ``--limit`` val images whose stem is not one of CBSD68's 68
scenes (all of which are in BSDS500 val). When the best lambda (or lr) of the
grid lies on its edge, one more value beyond that edge is tried at the best
other setting, so that a grid too narrow shows. Scores: PSNR of the output
clamped to [0, 1] against the clean crop, RGB, 5-pixel border cropped, beside
the same PSNR of A^+ y and of a plain baseline (bicubic for SR, the push-pull
fill for inpainting, y itself for denoising and deblurring). The best pair per
task became its default in ``restore.restorers.reddiff.DEFAULTS``. Points
already in ``<out>.json`` with the same protocol are not rerun.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import restore
from restore.bench.crops import read_centre_crop
from restore.bench.provenance import cpu_model, git_commit
from restore.io import list_images
from restore.metrics import psnr
from restore.operators import Blur, Denoise, Downsample, Inpaint, gaussian_kernel, random_mask
from restore.training.data import cbsd68_ids

BORDER = 5
# Per task: (lambdas, lrs). Centred by a few single-image probes: the noisy tasks
# need a larger lambda (the data term ignores the noise level) and a smaller lr
# (early, high-noise steps pull mu towards the prior's mean image, and a large lr
# leaves too few steps to come back); for noiseless inpainting lambda hardly
# matters (the holes see the prior's gradient only, which Adam normalises).
# Two values per axis after SR: the shared CPU ran at half speed, and the step
# past the edge shows where the optimum lies anyway.
GRIDS = {
    "sr_x4": ((0.05, 0.25, 1.0), (0.05, 0.2)),
    "deblur_g3_n6.4": ((0.25, 1.0), (0.02, 0.06)),
    "inpaint_50": ((0.05, 0.25), (0.1, 0.3)),
    "denoise_s25": ((0.5, 2.0), (0.02, 0.06)),
}


def tasks(size: int) -> dict[str, callable]:
    """Operator factories by task name (image index -> operator; masks seeded per image)."""
    return {
        "sr_x4": lambda i: Downsample(4, "bicubic"),
        "deblur_g3_n6.4": lambda i: Blur(gaussian_kernel(3.0), sigma=6.4 / 255),
        "inpaint_50": lambda i: Inpaint(random_mask(size, size, 0.5, torch.Generator().manual_seed(i))),
        "denoise_s25": lambda i: Denoise(25 / 255),
    }


def baseline(y: torch.Tensor, op) -> torch.Tensor:
    """The plain baseline: the push-pull fill of the known pixels, bicubic upsampling, or the measurement itself."""
    if isinstance(op, Inpaint):
        return op.fill(y)
    if op.scale != 1:
        return F.interpolate(y, scale_factor=round(1 / op.scale), mode="bicubic", align_corners=False)
    return y


def score(out: torch.Tensor, x: torch.Tensor) -> float:
    """PSNR (dB) of ``out`` clamped to [0, 1], RGB, border cropped."""
    inner = (slice(None), slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    return float(psnr(out.clamp(0, 1)[inner], x[inner]))


class Runner:
    """The data of one task and the (lambda, lr) points measured on it."""

    def __init__(self, task: str, t_index: int, make, images: list[torch.Tensor], steps: int) -> None:
        self.task, self.steps, self.images = task, steps, images
        self.ops = [make(i) for i in range(len(images))]
        self.ys = [op.measure(x, torch.Generator().manual_seed(1000 * t_index + i))
                   for i, (op, x) in enumerate(zip(self.ops, images))]

    def baselines(self) -> dict:
        pinv = [score(op.pinv(y), x) for op, y, x in zip(self.ops, self.ys, self.images)]
        plain = [score(baseline(y, op), x) for op, y, x in zip(self.ops, self.ys, self.images)]
        return {"pinv": round(float(np.mean(pinv)), 3), "plain": round(float(np.mean(plain)), 3)}

    def point(self, lam: float, lr: float) -> dict:
        model = restore.load("reddiff", steps=self.steps, lam=lam, lr=lr, progress=False)
        start = time.perf_counter()
        psnrs = [score(model.restore(y, op, generator=torch.Generator().manual_seed(i)).image, x)
                 for i, (op, y, x) in enumerate(zip(self.ops, self.ys, self.images))]
        seconds = (time.perf_counter() - start) / len(self.images)
        return {"task": self.task, "lambda": lam, "lr": lr, "psnr": round(float(np.mean(psnrs)), 3),
                "per_image": [round(p, 3) for p in psnrs], "seconds_per_image": round(seconds, 1)}


def beyond(values: list[float], best: float, factor: float) -> float | None:
    """A value past the grid's edge when ``best`` sits on it (None inside the grid)."""
    if best == max(values):
        return round(best * factor, 4)
    if best == min(values):
        return round(best / factor, 4)
    return None


def tune_task(runner: Runner, done: dict, record) -> None:
    """The grid, then one step past whichever edge the best point sits on."""
    def measure(lam: float, lr: float) -> dict:
        key = (runner.task, lam, lr)
        if key not in done:
            done[key] = runner.point(lam, lr)
            print(json.dumps(done[key]), flush=True)
            record()
        return done[key]

    lams, lrs = GRIDS[runner.task]
    rows = [measure(lam, lr) for lam in lams for lr in lrs]
    best = max(rows, key=lambda r: r["psnr"])
    lam_out = beyond([r["lambda"] for r in rows], best["lambda"], 4.0)
    if lam_out is not None:
        rows.append(measure(lam_out, best["lr"]))
    best = max(rows, key=lambda r: r["psnr"])
    lr_out = beyond(sorted({r["lr"] for r in rows}), best["lr"], 2.5)
    if lr_out is not None:
        measure(best["lambda"], lr_out)


def protocol(args: argparse.Namespace, names: list[str]) -> dict:
    return {"dataset": str(args.dataset), "images": names, "crop": args.crop, "steps": args.steps,
            "excluded": "the 68 CBSD68 scene ids", "seeds": "measurement 1000 * task index + image index; "
            "restorer generator = image index; inpainting mask seed = image index",
            "psnr": f"output clamped to [0, 1], RGB, {BORDER}-px border cropped, data range 1; mean over images",
            "grid": f"per task lambda x lr {({k: [list(v) for v in g] for k, g in GRIDS.items()})}, then one lambda "
                    "(x4 or /4) and one lr (x2.5 or /2.5) beyond the grid's edge when the best point sits on it"}


def markdown(report: dict) -> str:
    proto, machine = report["protocol"], report["machine"]
    lines = [f"# RED-Diff tuning on BSDS500 val ({len(proto['images'])} images, {proto['crop']} x {proto['crop']} "
             f"centre crops, {proto['steps']} steps, CBSD68 scenes excluded)", "",
             f"{report['date']}, commit `{report['commit']}`, {machine['cpu']} ({machine['cores']} cores, "
             f"{machine['torch_threads']} torch threads, shared with other work). Images: {', '.join(proto['images'])}.",
             "", f"Reproduce: `{report['command']}`", "",
             "| task | lambda | lr | PSNR | gain over A^+ y | gain over plain baseline | s / image |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for task, base in report["baselines"].items():
        rows = sorted((r for r in report["results"] if r["task"] == task), key=lambda r: (r["lambda"], r["lr"]))
        if not rows:
            continue
        best = max(rows, key=lambda r: r["psnr"])
        lines.append(f"| {task} | A^+ y | | {base['pinv']:.2f} | | | |")
        lines.append(f"| {task} | plain baseline | | {base['plain']:.2f} | | | |")
        for r in rows:
            mark = " **best**" if r is best else ""
            lines.append(f"| {task} | {r['lambda']} | {r['lr']} | {r['psnr']:.2f}{mark} | "
                         f"{r['psnr'] - base['pinv']:+.2f} | {r['psnr'] - base['plain']:+.2f} | {r['seconds_per_image']} |")
    lines += ["", "Plain baseline: bicubic upsampling (SR), push-pull fill of the known pixels (inpainting), "
              "the measurement itself (denoising, deblurring). A^+ y: the operator's pseudo-inverse (Wiener "
              "for the blur, holes at 0 for inpainting), which is also RED-Diff's starting point.", "",
              "## Protocol", ""]
    lines += [f"- **{k}**: {v}" for k, v in proto.items() if k != "images"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tasks", nargs="*", default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    excluded = cbsd68_ids()
    paths = [p for p in list_images(args.dataset) if p.stem not in excluded][: args.limit]
    images = [read_centre_crop(p, args.crop) for p in paths]
    proto = protocol(args, [p.stem for p in paths])
    old = json.loads(args.out.with_suffix(".json").read_text()) if args.out.with_suffix(".json").exists() else {}
    # Points are kept across runs with other grids: only the grid's description may differ.
    same = {k: v for k, v in old.get("protocol", {}).items() if k != "grid"} == {k: v for k, v in proto.items() if k != "grid"}
    done = {(r["task"], r["lambda"], r["lr"]): r for r in old.get("results", [])} if same else {}
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
              "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
              "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
              "protocol": proto, "baselines": {}, "results": []}

    def record() -> None:
        report["results"] = list(done.values())
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(markdown(report))

    for t_index, (task, make) in enumerate(tasks(args.crop).items()):
        if args.tasks and task not in args.tasks:
            continue
        runner = Runner(task, t_index, make, images, args.steps)
        report["baselines"][task] = runner.baselines()
        tune_task(runner, done, record)
    record()


if __name__ == "__main__":
    main()
