"""fp16 / bf16 against fp32 for every restorer: PSNR change and fp32 fallbacks, through ``Pipeline(precision=...)``.

One 96 x 96 crop of a scikit-image photo per case, whole-image calls (tile 0), seed 0, on the CPU
(torch autocast; on a CPU few operations run in fp16, so fp16 rows say little about a GPU): this
catches overflow and NaNs (which the pipeline answers by redoing the batch in fp32, and which this
study counts) and gross losses, not hundredths of a dB. PSNR of the output clipped to [0, 1] against
the clean crop, all channels, no border crop.

The restorers' ``half_precision`` entries come from this table and the per-model tables they name.

Run: python benchmarks/studies/precision_safety.py --out benchmarks/results/precision_safety
"""
from __future__ import annotations

import argparse
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch
from skimage import data

import restore
from restore.metrics import psnr
from restore.operators import Blur, Denoise, Downsample, gaussian_kernel
from restore.pipeline import Pipeline

PRECISIONS = ("fp32", "bf16", "fp16")


def cases() -> list[tuple[str, dict, object, torch.Tensor]]:
    """(restorer, its options, operator, clean image) for each case: 96 x 96 crops of scikit-image photos."""
    rgb = torch.from_numpy(data.astronaut()[20:116, 140:236]).permute(2, 0, 1)[None].float() / 255
    gray = torch.from_numpy(data.camera()[80:176, 200:296])[None, None].float() / 255
    s25, sr4 = Denoise(sigma=25 / 255), Downsample(4)
    deblur = Blur(gaussian_kernel(2.0), sigma=2.55 / 255)
    fast_vble = {"samples": 10, "iterations": 60}
    return [
        ("lidia", {}, s25, gray), ("nlm", {}, s25, rgb), ("bicubic", {}, sr4, rgb), ("rddm", {}, s25, rgb),
        ("rddm", {}, sr4, rgb), ("onestep-sr", {}, sr4, rgb), ("reddiff", {"steps": 30}, deblur, rgb),
        ("vble", fast_vble, deblur, rgb), ("vble-xz", fast_vble, deblur, rgb),
    ]


def run_case(name: str, options: dict, operator, clean: torch.Tensor) -> dict:
    y = operator.measure(clean, torch.Generator().manual_seed(0))
    row = {"restorer": name, "options": options, "task": operator.task, "input": list(clean.shape)}
    for precision in PRECISIONS:
        messages: list[str] = []
        pipe = Pipeline(restore.load(name, **options), operator, tile=0, precision=precision, log=messages.append)
        out = pipe(y)
        row[precision] = {"psnr": round(float(psnr(out.clamp(0, 1), clean)), 3),
                          "fp32_redo": any("NaN" in m for m in messages)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="OUT.md and OUT.json are written")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [run_case(*case) for case in cases()]
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor() or
            platform.machine(), "torch": torch.__version__, "threads": args.threads, "device": "cpu (autocast)"}
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = ["# Reduced precision against fp32, per restorer", "", f"{meta}", "",
             "| restorer | task | fp32 PSNR | bf16 - fp32 (dB) | fp16 - fp32 (dB) | fp32 redo (bf16 / fp16) |",
             "|---|---|---:|---:|---:|---|"]
    for r in rows:
        base = r["fp32"]["psnr"]
        lines.append(f"| {r['restorer']} | {r['task']} | {base:.2f} | {r['bf16']['psnr'] - base:+.3f} | "
                     f"{r['fp16']['psnr'] - base:+.3f} | {r['bf16']['fp32_redo']} / {r['fp16']['fp32_redo']} |")
    lines += ["", "Protocol: " + " ".join(__doc__.split("\n\n")[1].split())]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
