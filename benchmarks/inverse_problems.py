"""Deblurring, super-resolution and inpainting on 256 x 256 crops: PSNR, SSIM, LPIPS where available, seconds.

    python benchmarks/inverse_problems.py --dataset ../shared/data/CBSD68 --tasks sr_x4 deblur_g3_n6.4 inpaint_50 \
        --methods baseline,reddiff:steps=100,rddm --limit 10 --out benchmarks/results/inverse_cbsd68

Protocol (written into every report): clean images are the central 256 x 256
crops, RGB in [0, 1]. Degradations are the toolkit's operators, seeded per
image (noise and mask seed = image index): ``sr_x4`` bicubic Downsample x4, no
noise; ``deblur_g3_n6.4`` Gaussian blur std 3 px (circular boundary) with
Gaussian noise 6.4/255 (RED-Diff's sigma 0.05 in [-1, 1] units);
``deblur_g2_n2`` std 2 px with noise 2/255; ``inpaint_50`` half of the pixels
missing at random (no noise). PSNR and SSIM on the RGB output clipped to [0, 1],
no border cropped, not quantised. ``baseline`` is the measurement for deblurring,
bicubic upsampling for SR and the push-pull fill of the known pixels for
inpainting. Method specs: ``name`` or ``name:key=value`` (e.g. ``reddiff:steps=50``).
Seconds: wall time per image on this machine after one warm-up call. Tasks a
method does not support are skipped. Finished (task, image, method) records are
kept in ``<out>.jsonl`` and not redone.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from denoise import cpu_model, git_commit  # noqa: E402
from sr import finished_records, parse_spec, split_specs  # noqa: E402

import restore  # noqa: E402
from restore.errors import RestoreError  # noqa: E402
from restore.io import list_images, read_image  # noqa: E402
from restore.metrics import MetricUnavailable, lpips_distance, psnr, ssim  # noqa: E402
from restore.operators import Blur, Downsample, Inpaint, gaussian_kernel, random_mask  # noqa: E402

CROP = 256
TASKS = {
    "sr_x4": lambda i: Downsample(4),
    "deblur_g3_n6.4": lambda i: Blur(gaussian_kernel(3.0), sigma=6.4 / 255),
    "deblur_g2_n2": lambda i: Blur(gaussian_kernel(2.0), sigma=2 / 255),
    "inpaint_50": lambda i: Inpaint(random_mask(CROP, CROP, 0.5, torch.Generator().manual_seed(i))),
}


def centre_crop(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    if min(h, w) < CROP:
        raise RestoreError(f"image smaller than {CROP} x {CROP}")
    top, left = (h - CROP) // 2, (w - CROP) // 2
    return x[..., top : top + CROP, left : left + CROP]


def baseline(y: torch.Tensor, op) -> torch.Tensor:
    if op.task == "sr":
        return F.interpolate(y, scale_factor=op.factor, mode="bicubic", align_corners=False)
    if op.task == "deblur":
        return y
    return op.fill(y)


def scores(out: torch.Tensor, x: torch.Tensor) -> dict:
    out = out.clamp(0, 1)
    rec = {"psnr": float(psnr(out, x)), "ssim": float(ssim(out, x))}
    try:
        rec["lpips"] = float(lpips_distance(out, x))
    except MetricUnavailable:
        rec["lpips"] = None
    return rec


def method(spec: str):
    """A callable (y, op, seed) -> Restoration-like image and info, or None when the task is unsupported."""
    if spec == "baseline":
        return lambda y, op, seed: (baseline(y, op), {"evaluations": 0})
    name, kwargs = parse_spec(spec)
    restorer = restore.load(name, **kwargs)

    def run(y, op, seed):
        if op.task not in restorer.tasks:
            return None
        res = restorer.restore(y, op, generator=torch.Generator().manual_seed(seed))
        return res.image, res.info

    return run


def run(args: argparse.Namespace) -> list[dict]:
    out_jsonl = Path(args.out).with_suffix(".jsonl")
    done = finished_records(out_jsonl, ("task", "image", "method"))
    methods = {spec: method(spec) for spec in split_specs(args.methods)}
    records = list(done.values())
    paths = list_images(Path(args.dataset))[: args.limit or None]
    with out_jsonl.open("a") as sink:
        for task in args.tasks:
            for spec, fn in methods.items():
                fn(torch.rand(1, 3, 32, 32), TASKS[task](0) if task != "inpaint_50" else
                   Inpaint(random_mask(32, 32, 0.5, torch.Generator().manual_seed(0))), 0)  # warm-up
                for index, path in enumerate(paths):
                    if (task, path.stem, spec) in done:
                        continue
                    x = centre_crop(read_image(path).pixels)
                    op = TASKS[task](index)
                    y = op.measure(x, torch.Generator().manual_seed(index))
                    start = time.perf_counter()
                    got = fn(y, op, index)
                    if got is None:
                        break
                    seconds = time.perf_counter() - start
                    rec = {"task": task, "image": path.stem, "method": spec, "seconds": round(seconds, 3),
                           "evaluations": got[1].get("evaluations", got[1].get("steps", 0)), **scores(got[0], x)}
                    sink.write(json.dumps(rec) + "\n")
                    sink.flush()
                    records.append(rec)
                    print(f"{task} {path.stem} {spec}: {rec['psnr']:.2f} dB, {seconds:.1f} s", flush=True)
    return records


def markdown(records: list[dict], args: argparse.Namespace) -> str:
    lines = [f"# Inverse problems on {Path(args.dataset).name} (central 256 x 256 crops)", "",
             f"Machine: {cpu_model()}, {torch.get_num_threads()} threads; date {datetime.now(timezone.utc):%Y-%m-%d}; "
             f"commit {git_commit()}. Command: `python benchmarks/inverse_problems.py {' '.join(sys.argv[1:])}`", "",
             "Protocol: " + " ".join(__doc__.split("Protocol (written into every report):")[1].split("\n\n")[0].split()), ""]
    for task in dict.fromkeys(r["task"] for r in records):
        lines += [f"## {task}", "", "| method | images | PSNR | SSIM | LPIPS | s / image | evaluations |",
                  "|---|---|---|---|---|---|---|"]
        for spec in dict.fromkeys(r["method"] for r in records):
            rows = [r for r in records if r["task"] == task and r["method"] == spec]
            if not rows:
                continue
            mean = lambda k, rows=rows: sum(r[k] for r in rows) / len(rows)  # noqa: E731
            lp = [r["lpips"] for r in rows if r["lpips"] is not None]
            lpips_text = f"{sum(lp) / len(lp):.4f}" if lp else "n/a"
            lines.append(f"| {spec} | {len(rows)} | {mean('psnr'):.2f} | {mean('ssim'):.4f} | {lpips_text} | "
                         f"{mean('seconds'):.2f} | {rows[0]['evaluations']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--methods", default="baseline,rddm")
    ap.add_argument("--limit", type=int, default=0, help="first N images (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True, help="output stem: <out>.jsonl and <out>.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    records = run(args)
    Path(args.out).with_suffix(".md").write_text(markdown(records, args) + "\n")


if __name__ == "__main__":
    main()
