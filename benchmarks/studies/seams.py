"""The seam bar: a tiled run (tile 128, overlap 32) against one untiled call on 512 x 512 images.

    python benchmarks/studies/seams.py --models lidia,nlm --out benchmarks/results/seams

For each restorer, on scikit-image's 512 x 512 camera (it ships with the
dependencies) with sigma 25 noise, seed 0: PSNR of the untiled and tiled outputs
against the clean image, their difference, the largest pixel difference, and
the mean absolute step between neighbouring columns along the blended tile
borders, tiled over untiled (1.00 = no grid visible).
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import restore
from restore.bench.provenance import cpu_model, git_commit
from restore.metrics import psnr
from restore.operators import Denoise
from restore.pipeline import Pipeline
from restore.tiling import TileGrid

TILE, OVERLAP = 128, 32


def border_columns(width: int) -> torch.Tensor:
    cores = sorted({t.core[2:] for t in TileGrid(1, width, tile=TILE, overlap=OVERLAP)})
    cols: set[int] = set()
    for (_, prev_end), (start, _) in zip(cores, cores[1:]):
        cols.update(range(start - 1, prev_end))
    return torch.tensor(sorted(cols))


def border_step(out: torch.Tensor) -> float:
    d = (out[..., :, 1:] - out[..., :, :-1]).abs().mean(dim=(0, 1, 2))
    return float(d[border_columns(out.shape[-1])].mean())


def images() -> dict[str, torch.Tensor]:
    from skimage import data

    return {"camera": torch.from_numpy(data.camera().astype(np.float32) / 255)[None, None]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lidia,nlm")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    op = Denoise(25 / 255)
    records = []
    for name, clean in images().items():
        y = op.measure(clean, torch.Generator().manual_seed(0))
        for model in args.models.split(","):
            restorer = restore.load(model)
            whole = Pipeline(restorer, op, tile=0)(y)
            tiled = Pipeline(restorer, op, tile=TILE, overlap=OVERLAP, batch_size=4)(y)
            rec = {"image": name, "model": model, "psnr_untiled": round(float(psnr(whole.clamp(0, 1), clean)), 3),
                   "psnr_tiled": round(float(psnr(tiled.clamp(0, 1), clean)), 3),
                   "max_abs_diff": float((whole - tiled).abs().max()),
                   "border_step_ratio": round(border_step(tiled) / border_step(whole), 4)}
            rec["psnr_diff"] = round(rec["psnr_tiled"] - rec["psnr_untiled"], 4)
            print(json.dumps(rec), flush=True)
            records.append(rec)
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(), "cpu": cpu_model()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
    lines = [f"# Seams: tile {TILE} / overlap {OVERLAP} vs one untiled call (512 x 512, sigma 25, seed 0)", "",
             f"{meta['date']}, commit {meta['commit']}, {meta['cpu']}. Bar: |PSNR difference| < 0.05 dB, "
             "border step ratio <= 1.",
             f"Reproduce: `python benchmarks/studies/seams.py --models {args.models} --out {args.out}`", "",
             "| image | model | PSNR untiled | PSNR tiled | difference (dB) | max abs diff | border step ratio |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['image']} | {r['model']} | {r['psnr_untiled']} | {r['psnr_tiled']} | {r['psnr_diff']} | "
                     f"{r['max_abs_diff']:.2e} | {r['border_step_ratio']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
