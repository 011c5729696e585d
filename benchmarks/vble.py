"""VBLE on deblurring, super-resolution and inpainting: quality, time and uncertainty calibration.

    python benchmarks/vble.py --dataset ../shared/data/CBSD68 --limit 8 --out benchmarks/results/vble_cbsd68
    python benchmarks/vble.py --dataset ../shared/data/FFHQ_samples --limit 4 --out benchmarks/results/vble_ffhq

Protocol (written into every report): clean images are the central 256 x 256
crops, RGB in [0, 1]; each degradation is made with the toolkit's own
operators and seeds (noise seed = 1000 * task index + image index); PSNR and
SSIM on the RGB output clipped to [0, 1] with a 5-pixel border cropped; the
baseline row is the measurement itself for deblurring, bicubic upsampling for
SR and the push-pull fill of the known pixels for inpainting. Calibration:
the fraction of pixels (all channels, border cropped) whose true value lies in
mean +- 2 std, and the Pearson correlation of the std map with |error|.
Finished (task, image) pairs are kept in the JSON lines file and not redone.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import restore
from restore.bench.provenance import cpu_model, git_commit
from restore.io import list_images, read_image
from restore.metrics import MetricUnavailable, lpips_distance, psnr, ssim
from restore.operators import Blur, Downsample, Inpaint, gaussian_kernel, motion_kernel, random_mask

CROP = 256
BORDER = 5


def tasks(size: int = CROP) -> dict[str, callable]:
    """Operator factories by task name (seeded masks are made per image)."""
    return {
        "deblur_g1_n2.55": lambda i: Blur(gaussian_kernel(1.0), sigma=2.55 / 255, boundary="reflect"),
        "deblur_g3_n2.55": lambda i: Blur(gaussian_kernel(3.0), sigma=2.55 / 255, boundary="reflect"),
        "deblur_motion_n2.55": lambda i: Blur(motion_kernel(15, 30), sigma=2.55 / 255, boundary="reflect"),
        "deblur_g1_n7.65": lambda i: Blur(gaussian_kernel(1.0), sigma=7.65 / 255, boundary="reflect"),
        "sr_x2": lambda i: Downsample(2),
        "sr_x4": lambda i: Downsample(4),
        "inpaint_50": lambda i: Inpaint(random_mask(size, size, 0.5, torch.Generator().manual_seed(i))),
    }


def centre_crop(x: torch.Tensor, size: int = CROP) -> torch.Tensor:
    h, w = x.shape[-2:]
    r, c = (h - size) // 2, (w - size) // 2
    return x[..., r : r + size, c : c + size]


def baseline(y: torch.Tensor, op) -> torch.Tensor:
    if isinstance(op, Inpaint):
        return op.fill(y)
    if op.scale != 1:
        return F.interpolate(y, scale_factor=round(1 / op.scale), mode="bicubic", align_corners=False)
    return y


def inner(t: torch.Tensor) -> torch.Tensor:
    return t[..., BORDER:-BORDER, BORDER:-BORDER]


def scores(out: torch.Tensor, x: torch.Tensor) -> dict:
    o, g = inner(out.clamp(0, 1)), inner(x)
    rec = {"psnr": round(float(psnr(o, g)), 3), "ssim": round(float(ssim(o, g)), 4)}
    try:
        rec["lpips"] = round(float(lpips_distance(o, g)), 4)
    except MetricUnavailable:
        pass
    return rec


def calibration(mean: torch.Tensor, std: torch.Tensor, x: torch.Tensor) -> dict:
    err = inner(x - mean).abs().flatten().double()
    s = inner(std).flatten().double()
    coverage = float((err <= 2 * s).double().mean())
    corr = float(torch.corrcoef(torch.stack([s, err]))[0, 1])
    return {"coverage_2std": round(coverage, 4), "std_err_corr": round(corr, 4), "mean_std": round(float(s.mean()), 5)}


def run(args: argparse.Namespace) -> list[dict]:
    path = args.out.with_suffix(".jsonl")
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            done[(rec["task"], rec["image"])] = rec
    vble = restore.load(args.model, samples=args.samples)
    images = list_images(args.dataset)[: args.limit]
    records = []
    for t_index, (task, make) in enumerate(tasks().items()):
        if args.tasks and task not in args.tasks:
            continue
        for i, img_path in enumerate(images):
            key = (task, img_path.name)
            if key in done:
                records.append(done[key])
                continue
            x = centre_crop(read_image(img_path).pixels)
            op = make(i)
            y = op.measure(x, torch.Generator().manual_seed(1000 * t_index + i))
            start = time.perf_counter()
            res = vble.restore(y, op, generator=torch.Generator().manual_seed(i))
            seconds = time.perf_counter() - start
            rec = {"task": task, "image": img_path.name, "seconds": round(seconds, 2), "info": res.info,
                   "baseline": scores(baseline(y, op), x), "vble": scores(res.image, x),
                   **calibration(res.image, res.std, x)}
            print(json.dumps(rec), flush=True)
            records.append(rec)
            with path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
    return records


def summary(records: list[dict], args: argparse.Namespace) -> str:
    lines = [f"# {args.model} on {args.dataset.name} ({CROP} x {CROP} centre crops, first {args.limit} images)", "",
             f"Commit {git_commit()}, {cpu_model()}, 2 threads. {args.samples} posterior samples. Protocol: RGB, "
             f"clipped to [0, 1], {BORDER}-px border cropped; baseline = measurement (deblur), bicubic (SR), "
             "push-pull fill (inpainting). Coverage: share of pixels with |x - mean| <= 2 std.",
             f"Reproduce: `python benchmarks/vble.py --model {args.model} --dataset {args.dataset} --limit {args.limit} "
             f"--tasks {' '.join(dict.fromkeys(r['task'] for r in records))} --out {args.out}`", "",
             "| task | n | baseline PSNR | VBLE PSNR | gain (dB) | baseline SSIM | VBLE SSIM | VBLE LPIPS | "
             "s / image | coverage +-2 std | corr(std, abs err) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for task in dict.fromkeys(r["task"] for r in records):
        rows = [r for r in records if r["task"] == task]

        def mean(field, rows=rows):
            return float(np.mean([field(r) for r in rows]))

        lp = [r["vble"]["lpips"] for r in rows if "lpips" in r["vble"]]
        cells = [task, str(len(rows)), f"{mean(lambda r: r['baseline']['psnr']):.2f}", f"{mean(lambda r: r['vble']['psnr']):.2f}",
                 f"{mean(lambda r: r['vble']['psnr'] - r['baseline']['psnr']):+.2f}",
                 f"{mean(lambda r: r['baseline']['ssim']):.3f}", f"{mean(lambda r: r['vble']['ssim']):.3f}",
                 f"{np.mean(lp):.3f}" if lp else "n/a", f"{mean(lambda r: r['seconds']):.1f}",
                 f"{mean(lambda r: r['coverage_2std']):.3f}", f"{mean(lambda r: r['std_err_corr']):.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=8, help="first N images of the folder")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--model", default="vble", help="vble or vble-xz")
    ap.add_argument("--tasks", nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records = run(args)
    args.out.with_suffix(".md").write_text(summary(records, args))


if __name__ == "__main__":
    main()
