"""Rate-distortion points of the shipped compressive autoencoders on CBSD68 crops.

    python benchmarks/studies/cae_rd.py --dataset ../shared/data/CBSD68 --out benchmarks/results/cae_rd

Central 256 x 256 crops of every image; latents rounded as a codec would
(z around its predicted mean), bits = -log2 of the entropy models'
likelihoods (the ideal code length; no arithmetic coder is run), PSNR of
the decoded image clipped to [0, 1].
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from restore.bench.crops import read_centre_crop
from restore.bench.provenance import cpu_model, git_commit
from restore.io import list_images
from restore.metrics import psnr
from restore.restorers.vble import VbleRestorer, shipped_autoencoders
from restore.weights import WEIGHTS_DIR

CROP = 256


@torch.no_grad()
def rd_point(cae, images: list[torch.Tensor]) -> dict:
    """Mean bits per pixel and PSNR over ``images``."""
    bpps, psnrs = [], []
    for x in images:
        out = cae(x, quantize=True)
        bpps.append(float(out["bpp"].mean()))
        psnrs.append(float(psnr(out["x_hat"].clamp(0, 1), x)))
    return {"bpp": round(float(np.mean(bpps)), 4), "psnr": round(float(np.mean(psnrs)), 3), "images": len(images)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--before", type=Path, help="an earlier run's .json: its points are compared and plotted too")
    args = ap.parse_args()
    images = [read_centre_crop(p, CROP) for p in list_images(args.dataset)]
    loader = VbleRestorer(weights_dir=args.weights_dir)
    rows = []
    for name, alpha in sorted(shipped_autoencoders(args.weights_dir).items(), key=lambda kv: kv[1]):
        rows.append({"weights": name, "alpha": alpha, **rd_point(loader.autoencoder(name), images)})
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"commit": git_commit(), "cpu": cpu_model(), "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [f"# Compressive autoencoders: rate-distortion on {args.dataset.name} (256 x 256 centre crops)", "",
             f"Commit {doc['commit']}. Reproduce: `python benchmarks/studies/cae_rd.py --dataset {args.dataset} --out {args.out}"
             + (f" --before {args.before}" if args.before else "") + "`", "",
             "| weights | alpha | bits per pixel | PSNR (dB) | images |", "|---|---|---|---|---|"]
    lines += [f"| {r['weights']} | {r['alpha']} | {r['bpp']} | {r['psnr']} | {r['images']} |" for r in rows]
    if args.before:
        lines += compare_with(json.loads(args.before.read_text()), doc, args.before, args.out)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def compare_with(before: dict, now: dict, before_path: Path, out: Path) -> list[str]:
    """Rows comparing each autoencoder with its earlier weights; where the rate moved, the earlier
    pair's slope (dB per bpp between the two autoencoders) says what the rate change alone buys."""
    old = {r["weights"]: r for r in before["rows"]}
    pts = sorted(old.values(), key=lambda r: r["bpp"])
    slope = (pts[-1]["psnr"] - pts[0]["psnr"]) / (pts[-1]["bpp"] - pts[0]["bpp"]) if len(pts) > 1 else float("nan")
    lines = ["", f"Against the earlier weights ({before_path.name}, commit {before.get('commit', '?')}); the earlier "
             f"rate-distortion slope between the two autoencoders is {slope:.2f} dB per bpp.", "",
             "| weights | bpp before -> now | PSNR before -> now | PSNR gain | gain at equal rate (via the slope) |",
             "|---|---|---|---:|---:|"]
    for r in now["rows"]:
        b = old.get(r["weights"])
        if b is None:
            continue
        gain = r["psnr"] - b["psnr"]
        at_equal = gain - slope * (r["bpp"] - b["bpp"])
        lines.append(f"| {r['weights']} | {b['bpp']} -> {r['bpp']} | {b['psnr']} -> {r['psnr']} | {gain:+.3f} "
                     f"| {at_equal:+.3f} |")
    _plot(before["rows"], now["rows"], out.with_suffix(".png"))
    lines += ["", f"Both sets of points: `{out.with_suffix('.png').name}`."]
    return lines


def _plot(before: list[dict], now: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for rows, label, style in ((before, "earlier weights", "o--"), (now, "now", "s-")):
        rows = sorted(rows, key=lambda r: r["bpp"])
        ax.plot([r["bpp"] for r in rows], [r["psnr"] for r in rows], style, label=label)
        for r in rows:
            ax.annotate(r["weights"], (r["bpp"], r["psnr"]), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB), CBSD68 256 x 256 crops")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
