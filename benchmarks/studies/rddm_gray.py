"""RDDM's colour nets on gray images: told sigma (three equal channels, as before) against told the luminance level.

    python benchmarks/studies/rddm_gray.py --dataset ../shared/data/Set12 --out benchmarks/results/rddm_gray

A gray image copied into three channels carries its noise along luminance only,
sqrt(3) times stronger there than the i.i.d. colour noise the nets were trained
on. "told sigma" feeds the three equal channels with the true sigma and averages
the output (what the restorer did before); "luminance" is the restorer now
(``gray_for_colour_net``: told sqrt(3) sigma, scaled down past the trained range).
Degradations: toolkit operators, noise seeded per image index; PSNR on the gray
image clipped to [0, 1], whole image, no border crop.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import fmean

import torch

import restore
from restore.bench.provenance import git_commit, machine_info, now_utc
from restore.io import atomic_write, list_images, read_image
from restore.metrics import psnr
from restore.operators import Blur, Denoise, gaussian_kernel

SETTINGS = {
    "denoise sigma 15": lambda: Denoise(sigma=15 / 255),
    "denoise sigma 25": lambda: Denoise(sigma=25 / 255),
    "denoise sigma 50": lambda: Denoise(sigma=50 / 255),
    "deblur gaussian:2, sigma 2.55": lambda: Blur(gaussian_kernel(2.0), sigma=2.55 / 255),
    "deblur gaussian:2, sigma 8": lambda: Blur(gaussian_kernel(2.0), sigma=8 / 255),
}


def told_sigma(rddm, y: torch.Tensor, op) -> torch.Tensor:
    """The former handling: three equal channels, the true sigma, the channels' mean."""
    return rddm.restore(y.expand(-1, 3, -1, -1).contiguous(), op).image.mean(dim=1, keepdim=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, required=True, help="a folder of gray images")
    ap.add_argument("--out", type=Path, required=True, help="output stem: writes .md and .json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = [(p.name, read_image(p).pixels) for p in list_images(args.dataset)]
    if not images or any(x.shape[1] != 1 for _, x in images):
        raise SystemExit(f"error: {args.dataset} must hold gray images")
    rddm = restore.load("rddm")
    rows = []
    for label, make in SETTINGS.items():
        scores: dict[str, list[float]] = {"told sigma": [], "luminance": []}
        for index, (_, x) in enumerate(images):
            op = make()
            y = op.measure(x, torch.Generator().manual_seed(index))
            scores["told sigma"].append(float(psnr(told_sigma(rddm, y, op).clamp(0, 1), x)))
            scores["luminance"].append(float(psnr(rddm.restore(y, op).image.clamp(0, 1), x)))
        rows.append({"setting": label, "images": len(images), **{k: fmean(v) for k, v in scores.items()}})
        print(f"{label}: {rows[-1]['told sigma']:.2f} -> {rows[-1]['luminance']:.2f} dB", flush=True)
    report = {"dataset": str(args.dataset), "date": now_utc(), "commit": git_commit(),
              "machine": machine_info("cpu"), "rows": rows}
    lines = [f"# RDDM on gray images: {args.dataset.name}", "",
             f"{len(images)} images; {report['date']}, commit `{report['commit']}`.", "",
             f"Reproduce: `python benchmarks/studies/rddm_gray.py --dataset {args.dataset} --out {args.out}`", "",
             "| setting | images | told sigma (dB) | luminance level (dB) | gain |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['setting']} | {r['images']} | {r['told sigma']:.2f} | {r['luminance']:.2f} | "
              f"{r['luminance'] - r['told sigma']:+.2f} |" for r in rows]
    md, js = args.out.with_suffix(".md"), args.out.with_suffix(".json")
    atomic_write(md, lambda f: f.write(("\n".join(lines) + "\n").encode()), what="table")
    atomic_write(js, lambda f: f.write((json.dumps(report, indent=1) + "\n").encode()), what="table")
    print(md)


if __name__ == "__main__":
    main()
