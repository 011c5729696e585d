"""Tune VBLE's (autoencoder, lambda) per task on BSDS500 val images that are not CBSD68 scenes.

    python benchmarks/vble_tune.py --dataset ../shared/data/BSDS500/val --limit 4 --out benchmarks/results/vble_tune

Each task runs every (weights, lambda) pair of the grid on the central
128 x 128 crops of the first ``--limit`` val images (20 posterior samples, to
keep the grid affordable), and reports the mean PSNR of the MMSE estimate;
the best pair of each task became its default in ``restore.restorers.vble``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from vble import centre_crop, scores, tasks  # noqa: E402

import restore  # noqa: E402
from restore.io import list_images, read_image  # noqa: E402
from restore.restorers.vble import shipped_autoencoders  # noqa: E402
from restore.training.data import cbsd68_ids  # noqa: E402
from restore.weights import WEIGHTS_DIR  # noqa: E402

CROP = 128
LAMBDAS = {"deblur": (0.5, 1.0, 2.0), "sr": (1.0, 2.5, 5.0), "inpaint": (2.0, 5.0, 10.0)}


def write_report(out: Path, results: list[dict], args: argparse.Namespace, n_images: int) -> None:
    """JSON and Markdown of the grid so far, the best pair of each task marked."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"# VBLE tuning on {args.dataset} ({n_images} images, {CROP} x {CROP} crops, CBSD68 scenes excluded)", "",
             f"Reproduce: `python benchmarks/vble_tune.py --dataset {args.dataset} --limit {args.limit} --out {out}`", "",
             "| task | weights | lambda | PSNR |", "|---|---|---|---|"]
    for task in dict.fromkeys(r["task"] for r in results):
        rows = [r for r in results if r["task"] == task]
        best = max(rows, key=lambda r: r["psnr"])
        for r in rows:
            mark = " **best**" if r is best else ""
            lines.append(f"| {task} | {r['weights']} | {r['lambda']} | {r['psnr']}{mark} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--tasks", nargs="*", default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    excluded = cbsd68_ids()
    paths = [p for p in list_images(args.dataset) if p.stem not in excluded][: args.limit]
    images = [centre_crop(read_image(p).pixels, CROP) for p in paths]
    results = []
    for t_index, (task, make) in enumerate(tasks(CROP).items()):
        if args.tasks and task not in args.tasks:
            continue
        for weights in shipped_autoencoders(WEIGHTS_DIR):
            for lam in LAMBDAS[task.split("_")[0]]:
                vble = restore.load("vble", samples=20, weights=weights, lam=lam)
                psnrs = []
                for i, x in enumerate(images):
                    op = make(i)
                    y = op.measure(x, torch.Generator().manual_seed(1000 * t_index + i))
                    psnrs.append(scores(vble.restore(y, op, generator=torch.Generator().manual_seed(i)).image, x)["psnr"])
                rec = {"task": task, "weights": weights, "lambda": lam, "psnr": round(float(np.mean(psnrs)), 3)}
                print(json.dumps(rec), flush=True)
                results.append(rec)
                write_report(args.out, results, args, len(images))  # after every point: a cut run keeps its results


if __name__ == "__main__":
    main()
