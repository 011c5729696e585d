"""How many sampling steps RDDM should take per task: PSNR against steps on BSDS500 val crops.

    python benchmarks/studies/rddm_steps.py --dataset ../shared/data/BSDS500/val --exclude ../shared/data/CBSD68 \
        --limit 6 --steps 1 2 3 5 --out benchmarks/results/rddm_steps

Tuning data: BSDS500 val images that are not among the 68 CBSD68 test scenes,
central 256 x 256 crops, RGB. Degradations (toolkit operators, seeded per image):
denoise sigma 25; deblur Gaussian std 2.0 with noise 2/255; SR x4 bicubic. PSNR
on RGB clipped to [0, 1], no border crop. The restorer's defaults (DEFAULT_STEPS
in restore/restorers/rddm.py) are the fewest steps with the best mean here.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

import restore
from restore.bench.crops import read_centre_crop
from restore.bench.provenance import cpu_model, git_commit
from restore.io import list_images
from restore.metrics import psnr
from restore.operators import Blur, Denoise, Downsample, gaussian_kernel

CROP = 256
TASKS = {
    "denoise_s25": lambda: Denoise(sigma=25 / 255),
    "deblur_g2_n2": lambda: Blur(gaussian_kernel(2.0), sigma=2 / 255),
    "sr_x4": lambda: Downsample(4),
}


def tuning_images(folder: Path, exclude: Path | None, limit: int) -> list[tuple[str, torch.Tensor]]:
    held_out = {p.stem for p in list_images(exclude)} if exclude else set()
    out = []
    for path in list_images(folder):
        if path.stem in held_out:
            continue
        out.append((path.stem, read_centre_crop(path, CROP)))
        if len(out) == limit:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--exclude", default=None, help="folder whose image ids are left out (the test scenes)")
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 5])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = tuning_images(Path(args.dataset), Path(args.exclude) if args.exclude else None, args.limit)
    rows = []
    for task, make in TASKS.items():
        op = make()
        for steps in args.steps:
            rddm = restore.load("rddm", steps=steps)
            scores, seconds = [], 0.0
            for index, (_, x) in enumerate(images):
                y = op.measure(x, torch.Generator().manual_seed(index))
                start = time.perf_counter()
                out = rddm.restore(y, op, generator=torch.Generator().manual_seed(index)).image
                seconds += time.perf_counter() - start
                scores.append(float(psnr(out.clamp(0, 1), x)))
            rows.append({"task": task, "steps": steps, "psnr": round(sum(scores) / len(scores), 3),
                         "seconds": round(seconds / len(images), 3), "images": len(images)})
            print(rows[-1], flush=True)
    report = {"machine": cpu_model(), "threads": args.threads, "date": f"{datetime.now(timezone.utc):%Y-%m-%d}",
              "commit": git_commit(), "images": [name for name, _ in images], "rows": rows}
    Path(args.out).with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# RDDM: PSNR against sampling steps (BSDS500 val crops, not the CBSD68 scenes)", "",
             f"Machine {report['machine']}, {args.threads} threads, {report['date']}, commit {report['commit']}. "
             f"Command: `python benchmarks/studies/rddm_steps.py {' '.join(sys.argv[1:])}`", "",
             " ".join(__doc__.split("\n\n")[2].split()), "", "| task | steps | PSNR (dB) | s / image (256x256) |",
             "|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['steps']} | {r['psnr']:.2f} | {r['seconds']:.2f} |" for r in rows]
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
