"""Pipeline throughput (megapixels per second) over tile sizes and batch sizes, per restorer and device.

    python benchmarks/studies/tiling.py --models nlm --size 1024 --out benchmarks/results/tiling_cpu_nlm
    python benchmarks/studies/tiling.py --models lidia --size 512 --tiles 128 256 512 --batches 1 4 16 \
        --out benchmarks/results/tiling_cpu_lidia
    python benchmarks/studies/tiling.py --models lidia --device cuda --out benchmarks/results/tiling_gpu_lidia  # with a GPU

The input is scikit-image's camera tiled to ``--size`` x ``--size`` with sigma
25/255 Gaussian noise. Each configuration runs once after a warm-up on a
small crop (so that weights are loaded and kernels compiled); the time covers
tiling, transfers, the restorer and blending, as ``restore.Pipeline`` runs them.
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

from restore.bench.provenance import cpu_model, git_commit
from restore.operators import Denoise
from restore.pipeline import Pipeline


def test_image(size: int) -> torch.Tensor:
    from skimage import data

    cam = data.camera().astype(np.float32) / 255
    reps = -(-size // cam.shape[0])
    big = np.tile(cam, (reps, reps))[:size, :size]
    x = torch.from_numpy(np.ascontiguousarray(big))[None, None]
    return Denoise(25 / 255).measure(x, torch.Generator().manual_seed(0))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model: str, y: torch.Tensor, tile: int, batch: int, device: torch.device, precision: str) -> dict:
    pipe = Pipeline(model, Denoise(25 / 255), tile=tile, batch_size=batch, device=device, precision=precision)
    pipe(y[..., :64, :64])  # warm-up: weights, folding, kernels
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    t = time.perf_counter()
    pipe(y)
    sync(device)
    seconds = time.perf_counter() - t
    mpx = y.shape[-1] * y.shape[-2] / 1e6
    record = {"model": model, "tile": tile, "batch": batch, "device": str(device), "precision": precision,
              "seconds": round(seconds, 3), "megapixels_per_s": round(mpx / seconds, 4)}
    if device.type == "cuda":
        record["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return record


def write_report(out: Path, meta: dict, records: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
    lines = [f"# Pipeline throughput: megapixels per second ({meta['device']}, {meta['precision']})", "",
             f"{meta['date']}, commit {meta['commit']}, {meta['hardware']}. Input: {meta['size']} x {meta['size']} "
             "gray, sigma 25. Rows: tile side; columns: tiles per batch.", f"Reproduce: `{meta['command']}`", ""]
    for model in dict.fromkeys(r["model"] for r in records):
        rows = [r for r in records if r["model"] == model]
        batches = sorted({r["batch"] for r in rows})
        lines += [f"## {model}", "", "| tile | " + " | ".join(f"batch {b}" for b in batches) + " |",
                  "|---|" + "---|" * len(batches)]
        for tile in sorted({r["tile"] for r in rows}):
            cells = {r["batch"]: r["megapixels_per_s"] for r in rows if r["tile"] == tile}
            lines.append(f"| {tile} | " + " | ".join(str(cells.get(b, "")) for b in batches) + " |")
        lines.append("")
    out.with_suffix(".md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="nlm")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--tiles", type=int, nargs="+", default=[128, 256, 512, 1024])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    device = torch.device(args.device)
    y = test_image(args.size)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_model()} ({os.cpu_count()} cores)"
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
            "hardware": hardware, "device": args.device, "precision": args.precision, "size": args.size,
            "command": "python " + " ".join(sys.argv)}
    records = []
    for model in args.models.split(","):
        for tile in args.tiles:
            for batch in args.batches:
                records.append(measure(model, y, tile, batch, device, args.precision))
                print(json.dumps(records[-1]), flush=True)
                write_report(args.out, meta, records)


if __name__ == "__main__":
    main()
