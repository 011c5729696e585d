"""The diffusion prior as a plain Gaussian denoiser (one network evaluation) on a dataset, and its CPU time.

    python benchmarks/studies/prior_denoiser.py --dataset ../shared/data/CBSD68 --sigma 15 25 50 \\
        --out benchmarks/results/prior_denoiser_cbsd68

Same protocol and the same noisy images as ``restore bench --task denoise``
(``restore.bench.cases.degrade``: float Gaussian noise seeded by
sha256('seed/sigma/index'), not clipped or quantised;
output clamped to [0, 1]; PSNR over the full image, all channels, no border
crop). The denoiser is ``restore.restorers.reddiff.prior_denoise``: z = 2y - 1,
s = 2 sigma, t = the fractional timestep whose noise level is s, x0 = z - s
eps(sqrt(abar_t) z, t). Rows of other methods at the same sigma are copied from
a committed denoising table with per-sigma ``summary`` rows (``--reference``; the
default was made by the former ``benchmarks/denoise.py``), labelled as such.
The time of one network evaluation on a 256 x 256 RGB input is measured apart
(median of ``--repeat`` calls after a warm-up).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from restore.bench.cases import Setting, degrade
from restore.bench.provenance import git_commit, machine_info
from restore.errors import RestoreError
from restore.io import atomic_write, list_images, read_image
from restore.metrics import psnr, ssim
from restore.restorers.reddiff import frozen_prior, prior_denoise
from restore.weights import WEIGHTS_DIR

REPO = Path(__file__).resolve().parents[2]

SIDE = 256


def network_seconds(net: torch.nn.Module, repeat: int, threads: int) -> dict:
    """Median wall and process-CPU time of one prior evaluation on a 1 x 3 x 256 x 256 input, and the load average."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    x = torch.randn(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)  # as prior_residual and prior_denoise feed it
    t = torch.full((1,), 100.0)
    wall, cpu = [], []
    with torch.no_grad():
        net(x, t)
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            net(x, t)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    torch.set_num_threads(previous)
    # Another job on this 2-core machine slows a 2-thread run most: the load average says how busy it was.
    return {"threads": threads, "wall_s": round(statistics.median(wall), 3), "cpu_s": round(statistics.median(cpu), 3),
            "load_average_1min": round(os.getloadavg()[0], 2)}


def reference_rows(path: Path | None, sigmas: list[float]) -> list[dict]:
    """The ``summary`` rows of a committed denoising table at these sigmas (copied, not rerun)."""
    if path is None or not path.is_file():
        return []
    summary = json.loads(path.read_text()).get("summary", [])
    return [{**r, "source": str(path)} for r in summary if r["sigma"] in sigmas]


def markdown(report: dict) -> str:
    machine, proto = report["machine"], report["protocol"]
    lines = [f"# The diffusion prior as a one-evaluation denoiser: {Path(proto['dataset']).name}", "",
             f"{len(proto['images'])} images, seed {proto['seed']}. {report['date']}, commit `{report['commit']}`, "
             f"{machine['cpu']} ({machine['cores']} cores, {machine['torch_threads']} torch threads, shared with "
             "other work).", "",
             f"Reproduce: `{report['command']}`", "",
             "| method | sigma | images | PSNR (dB) | SSIM | s / image |", "|---|---:|---:|---:|---:|---:|"]
    for row in report["summary"]:
        lines.append(f"| noisy input | {row['sigma']:g} | {row['images']} | {row['input_psnr']:.2f} | — | — |")
        lines.append(f"| **diffusion prior, 1 evaluation** | {row['sigma']:g} | {row['images']} | **{row['psnr']:.2f}** "
                     f"| {row['ssim']:.4f} | {row['seconds_per_image']:.2f} |")
        for ref in (r for r in report["reference"] if r["sigma"] == row["sigma"]):
            lines.append(f"| {ref['method']} (from `{Path(ref['source']).name}`, same noisy inputs) | {ref['sigma']:g} "
                         f"| {ref['images']} | {ref['psnr']:.2f} | {ref['ssim']:.4f} | {ref['seconds_per_image']:.2f} |")
    lines += ["", f"One network evaluation on a 1 x 3 x {SIDE} x {SIDE} input (median of {proto['repeat']}):", "",
              "| torch threads | wall s | process CPU s | 1-min load average during the runs |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['threads']} | {r['wall_s']:.3f} | {r['cpu_s']:.3f} | {r['load_average_1min']} |"
              for r in report["network_seconds_256"]]
    lines += ["", "## Protocol", ""]
    lines += [f"- **{k}**: {v}" for k, v in proto.items() if k != "images"]
    lines += ["", "## Machine", "", "```", json.dumps(machine, indent=2), "```", ""]
    return "\n".join(lines)


def summarise(records: list[dict], sigmas: list[float]) -> list[dict]:
    rows = []
    for sigma in sigmas:
        rs = [r for r in records if r["sigma"] == sigma]
        if rs:
            rows.append({"sigma": sigma, "images": len(rs), "psnr": float(np.mean([r["psnr"] for r in rs])),
                         "ssim": float(np.mean([r["ssim"] for r in rs])),
                         "input_psnr": float(np.mean([r["input_psnr"] for r in rs])),
                         "seconds_per_image": float(np.mean([r["seconds"] for r in rs]))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--sigma", nargs="+", type=float, default=[15.0, 25.0, 50.0])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the images")
    ap.add_argument("--timing-threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--reference", type=Path, default=REPO / "benchmarks/results/cbsd68_color.json")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = frozen_prior(WEIGHTS_DIR, torch.device("cpu"))
    paths = list_images(args.dataset)[: args.limit]
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
              "machine": machine_info("cpu"),
              "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
              "protocol": {"dataset": str(args.dataset), "images": [p.name for p in paths], "sigmas_255": args.sigma,
                           "seed": args.seed, "repeat": args.repeat,
                           "noise": "as restore bench --task denoise (restore.bench.cases.degrade): y = x + sigma/255 n, "
                                    "n ~ N(0, 1) float32 seeded by sha256('seed/sigma/index')[:8]; not clipped, not quantised",
                           "denoiser": "restore.restorers.reddiff.prior_denoise: one evaluation of the shipped "
                                       "diffusion prior at the fractional timestep whose noise level is 2 sigma/255 "
                                       "([-1, 1] units); sides reflect-padded to a multiple of 8 and cropped back",
                           "output": "clamped to [0, 1], not quantised",
                           "psnr": "10 log10(1 / MSE), full image, all channels, data range 1; mean over images",
                           "ssim": "restore.metrics.ssim (Gaussian 11x11, sigma 1.5, per channel)",
                           "timing": "perf_counter around prior_denoise per image (after the 256 x 256 timing runs); "
                                     "the 256 x 256 time is the median of --repeat evaluations after one warm-up"},
              "network_seconds_256": [network_seconds(net, args.repeat, n) for n in args.timing_threads], "records": []}
    for sigma in args.sigma:
        for index, path in enumerate(paths):
            x = read_image(path).pixels
            if x.shape[1] != 3:
                raise RestoreError(f"{path.name} has {x.shape[1]} channel(s); the diffusion prior takes RGB images")
            y = degrade(Setting("denoise", sigma=sigma), x, args.seed, index).degraded
            start = time.perf_counter()
            out = prior_denoise(net, y, sigma / 255).clamp(0, 1)
            seconds = time.perf_counter() - start
            rec = {"image": path.name, "index": index, "sigma": sigma, "input_psnr": float(psnr(y, x)),
                   "psnr": float(psnr(out, x)), "ssim": float(ssim(out, x)), "seconds": seconds}
            report["records"].append(rec)
            print(json.dumps(rec), flush=True)
        report["summary"] = summarise(report["records"], args.sigma)
        report["reference"] = reference_rows(args.reference, args.sigma)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(report, indent=1) + "\n"
        atomic_write(args.out.with_suffix(".json"), lambda f, text=text: f.write(text.encode()), what="table")
        atomic_write(args.out.with_suffix(".md"), lambda f, md=markdown(report): f.write(md.encode()), what="table")


if __name__ == "__main__":
    main()
