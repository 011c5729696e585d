"""Tune VBLE's (autoencoder, lambda) per task on BSDS500 val images that are not CBSD68 scenes.

    python benchmarks/vble_tune.py --dataset ../shared/data/BSDS500/val --limit 6 --threads 1 \
        --tasks deblur_g2c_n2.55 deblur_g1_n2.55 inpaint_50 --out benchmarks/results/vble_tune_campaign1

Each task runs every (weights, lambda) pair of the grid on the central
128 x 128 crops of the first ``--limit`` val images (20 posterior samples, to
keep the grid affordable), and reports the mean PSNR of the MMSE estimate;
the best pair of each task became its default in ``restore.restorers.vble``.
``deblur_g2c_n2.55`` is the degradation of the committed deblurring bench
table (``make_operator("deblur", kernel="gaussian:2.0")``: circular boundary),
on these tuning images; ``inpaint_50_n2.55`` is inpainting with noise, to
check how lambda moves with the data term's weight. Points already in the
``--out`` JSON are not redone.
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
from restore.operators import Inpaint, make_operator, random_mask  # noqa: E402
from restore.restorers.vble import shipped_autoencoders  # noqa: E402
from restore.training.data import cbsd68_ids  # noqa: E402
from restore.weights import WEIGHTS_DIR  # noqa: E402

CROP = 128
# Widened for the re-trained autoencoders (campaign 1): the earlier grid's best
# points sat on its edges. Noise-free tasks (inpainting, SR) weigh the data term
# by 1 / SIGMA_FLOOR^2, hence their grids reach lambdas in the thousands.
LAMBDAS = {
    "deblur": (0.25, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0),
    "sr": (1.0, 2.5, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0),
    "inpaint": (0.5, 1.0, 2.0, 3.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0, 200.0, 400.0, 700.0, 1000.0,
                1400.0, 2000.0, 5000.0, 10000.0),
}


def tune_tasks(size: int) -> dict:
    """benchmarks/vble.py's tasks (same seeds) plus the deblurring bench table's own degradation and noisy inpainting."""
    return {**tasks(size), "deblur_g2c_n2.55": lambda i: make_operator("deblur", sigma=2.55 / 255, kernel="gaussian:2.0"),
            "inpaint_50_n2.55": lambda i: Inpaint(random_mask(size, size, 0.5, torch.Generator().manual_seed(i)),
                                                  sigma=2.55 / 255)}


def reproduce(args: argparse.Namespace, out: Path) -> str:
    cmd = f"python benchmarks/vble_tune.py --dataset {args.dataset} --limit {args.limit} --threads {args.threads}"
    if args.tasks:
        cmd += " --tasks " + " ".join(args.tasks)
    if args.weights:
        cmd += " --weights " + " ".join(args.weights)
    if args.lambdas:
        cmd += " --lambdas " + " ".join(f"{v:g}" for v in args.lambdas)
    return cmd + f" --out {out}"


def write_report(out: Path, results: list[dict], args: argparse.Namespace, n_images: int) -> None:
    """JSON and Markdown of the grid so far, the best pair of each task marked."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"# VBLE tuning on {args.dataset} ({n_images} images, {CROP} x {CROP} crops, CBSD68 scenes excluded)", "",
             f"Reproduce: `{reproduce(args, out)}`", "",
             "| task | weights | lambda | PSNR |", "|---|---|---|---|"]
    for task in dict.fromkeys(r["task"] for r in results):
        order = list(dict.fromkeys(r["weights"] for r in results))
        rows = sorted((r for r in results if r["task"] == task), key=lambda r: (order.index(r["weights"]), r["lambda"]))
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
    ap.add_argument("--weights", nargs="*", default=None, help="autoencoders to try (default: every shipped one)")
    ap.add_argument("--lambdas", nargs="*", type=float, default=None, help="lambdas to try (default: the task's LAMBDAS)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.threads < 1:
        raise SystemExit(f"--threads must be >= 1, got {args.threads}")
    if args.lambdas and min(args.lambdas) <= 0:
        raise SystemExit(f"--lambdas must be > 0, got {args.lambdas}")
    torch.set_num_threads(args.threads)
    grid = tune_tasks(CROP)
    unknown = [t for t in args.tasks or [] if t not in grid]
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; tasks: {', '.join(grid)}")
    shipped = shipped_autoencoders(WEIGHTS_DIR)
    unknown = [w for w in args.weights or [] if w not in shipped]
    if unknown:
        raise SystemExit(f"unknown weights {unknown}; shipped: {', '.join(shipped)}")
    excluded = cbsd68_ids()
    paths = [p for p in list_images(args.dataset) if p.stem not in excluded][: args.limit]
    images = [centre_crop(read_image(p).pixels, CROP) for p in paths]
    path = args.out.with_suffix(".json")
    results = json.loads(path.read_text()) if path.exists() else []
    results = [r for r in results if r.get("images") == len(images)]  # a point on another image set is redone
    done = {(r["task"], r["weights"], r["lambda"]) for r in results}
    for task in args.tasks or grid:  # in the order asked; the seeds keep each task's index in the grid
        t_index, make = list(grid).index(task), grid[task]
        for weights in args.weights or shipped:
            for lam in args.lambdas or LAMBDAS[task.split("_")[0]]:
                if (task, weights, lam) in done:
                    continue
                vble = restore.load("vble", samples=20, weights=weights, lam=lam)
                psnrs = []
                for i, x in enumerate(images):
                    op = make(i)
                    y = op.measure(x, torch.Generator().manual_seed(1000 * t_index + i))
                    psnrs.append(scores(vble.restore(y, op, generator=torch.Generator().manual_seed(i)).image, x)["psnr"])
                rec = {"task": task, "weights": weights, "lambda": lam, "psnr": round(float(np.mean(psnrs)), 3),
                       "images": len(images)}
                print(json.dumps(rec), flush=True)
                results.append(rec)
                write_report(args.out, results, args, len(images))  # after every point: a cut run keeps its results
    write_report(args.out, results, args, len(images))


if __name__ == "__main__":
    main()
