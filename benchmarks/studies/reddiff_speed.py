"""Wall time of a RED-Diff restoration (``--steps`` steps) of a 256 x 256 RGB image on this machine.

    python benchmarks/studies/reddiff_speed.py --threads 1 2 --out benchmarks/results/reddiff_speed

The clean image is the central 256 x 256 crop of scikit-image's astronaut; the
operator is each ``--tasks`` entry (the degradations of ``reddiff_tune.py``). One untimed
10-step call first (weights, schedule, allocator), then ``--repeat`` timed
calls of ``restore.load("reddiff", steps=...).restore(y, op)``; the median is
reported with the process CPU time and the 1-minute load average (the machine
is shared: another busy job slows a 2-thread run most), and the PSNR of the
last output (fp32 and bf16 autocast side by side).
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

import restore
from restore.bench.crops import centre_crop
from restore.bench.provenance import cpu_model, git_commit
from restore.metrics import psnr
from restore.operators import Blur, Denoise, Downsample, Inpaint, gaussian_kernel, random_mask

SIDE = 256
# The degradations of reddiff_tune.py, by the same names (the inpainting mask seeded with 0).
TASKS = {
    "sr_x4": lambda: Downsample(4, "bicubic"),
    "deblur_g3_n6.4": lambda: Blur(gaussian_kernel(3.0), sigma=6.4 / 255),
    "inpaint_50": lambda: Inpaint(random_mask(SIDE, SIDE, 0.5, torch.Generator().manual_seed(0))),
    "denoise_s25": lambda: Denoise(25 / 255),
}


def astronaut() -> torch.Tensor:
    from skimage import data

    img = torch.from_numpy(data.astronaut().astype(np.float32) / 255).permute(2, 0, 1)[None]
    return centre_crop(img, SIDE).contiguous()


def timed(task: str, steps: int, threads: int, repeat: int, precision: str) -> dict:
    torch.set_num_threads(threads)
    # What the pipeline's --precision bf16 does: the restore call under CPU autocast.
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    x, op = astronaut(), TASKS[task]()
    y = op.measure(x, torch.Generator().manual_seed(0))
    restore.load("reddiff", steps=10, progress=False).restore(y, op)
    model = restore.load("reddiff", steps=steps, progress=False)
    wall, cpu = [], []
    for i in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        with autocast:
            out = model.restore(y, op, generator=torch.Generator().manual_seed(i)).image
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"task": task, "steps": steps, "threads": threads, "precision": precision,
            "wall_s": round(statistics.median(wall), 1), "cpu_s": round(statistics.median(cpu), 1),
            "load_average_1min": round(os.getloadavg()[0], 2), "psnr_last": round(float(psnr(out.clamp(0, 1), x)), 2),
            "psnr_input": round(float(psnr(y, x)), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["deblur_g3_n6.4"], choices=list(TASKS))
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32"])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
              "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
              "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]), "runs": []}
    for task in args.tasks:
        for precision in args.precision:
            for threads in args.threads:
                report["runs"].append(timed(task, args.steps, threads, args.repeat, precision))
            print(json.dumps(report["runs"][-1]), flush=True)
    lines = [f"# RED-Diff time per image, {SIDE} x {SIDE} RGB, on this CPU", "",
             f"{report['date']}, commit `{report['commit']}`, {report['cpu']} ({report['cores']} cores, shared with "
             f"other work), torch {report['torch']}. Median of {args.repeat} call(s) after a 10-step warm-up.", "",
             f"Reproduce: `{report['command']}`", "",
             "| task | steps | precision | torch threads | wall s | process CPU s | 1-min load average | PSNR in -> out |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    lines += [f"| {r['task']} | {r['steps']} | {r['precision']} | {r['threads']} | {r['wall_s']} | {r['cpu_s']} | "
              f"{r['load_average_1min']} | {r['psnr_input']} -> {r['psnr_last']} |" for r in report["runs"]]
    lines += ["", "PSNR: the output of the last timed call (seed = its index) against the clean crop, full image, RGB; "
              "bf16 = the restore call under CPU autocast, as `--precision bf16` runs it (the prior in bfloat16, "
              "the data term and Adam in float32)."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
