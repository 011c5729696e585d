"""CPU time of one network evaluation of the shipped diffusion nets, and of a one-step x4 super-resolution.

    python benchmarks/studies/diffusion_speed.py --threads 2 --out benchmarks/results/diffusion_speed

For each net: the median of ``--repeat`` timed calls after two warm-ups, under
torch.inference_mode, float32, at the size the restorer runs it: the one-step
x4 super-resolver and RDDM x4 on a 256 x 256 input (a 1024 x 1024 output), the
RDDM denoiser and the diffusion prior on 256 x 256. Variants: NCHW,
channels-last memory format (how the RDDM restorers run the nets), and
channels-last under bfloat16 autocast (this CPU has AVX512-BF16; what
``--precision bf16`` gives). Also the whole ``restore.load("onestep-sr").restore``
call (upsampling, padding, the net) in float32 and under bf16 autocast.
FLOPs are counted from the convolutions' shapes (multiply-adds x 2).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

import restore
from restore.bench.provenance import cpu_model, git_commit
from restore.operators import Downsample
from restore.restorers.rddm import frozen_unet
from restore.weights import WEIGHTS_DIR


def median_seconds(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls after two warm-up calls (oneDNN picks kernels on the first two)."""
    fn()
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_flops(net: torch.nn.Module, x: torch.Tensor, cond: torch.Tensor) -> float:
    """2 x multiply-adds of every Conv2d for one call on x."""
    total = 0.0

    def hook(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += 2.0 * k * output.numel()

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        net(x, cond)
    for h in handles:
        h.remove()
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = [("onestep-sr4", 1024, 7), ("rddm-sr4", 1024, 7), ("rddm-denoise", 256, 7), ("diffusion-prior", 256, 3)]
    rows = []
    for name, side, channels in cases:
        net = frozen_unet(name, WEIGHTS_DIR, torch.device("cpu"))
        x, cond = torch.rand(1, channels, side, side), torch.tensor([500.0])
        flops = conv_flops(net, x, cond)
        for variant in ("nchw", "channels_last", "channels_last bf16"):
            fmt = torch.contiguous_format if variant == "nchw" else torch.channels_last
            xv, netv = x.contiguous(memory_format=fmt), net.to(memory_format=fmt)
            dtype = torch.bfloat16 if "bf16" in variant else torch.float32

            def call(netv=netv, xv=xv, dtype=dtype, cond=cond):
                with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                    netv(xv, cond)

            s = median_seconds(call, args.repeat)
            rows.append({"net": name, "variant": variant, "size": f"{side}x{side}", "gflop": round(flops / 1e9, 1),
                         "seconds": round(s, 3), "gflop_per_s": round(flops / 1e9 / s, 1)})
            print(rows[-1], flush=True)
    onestep, op, y = restore.load("onestep-sr"), Downsample(4), torch.rand(1, 3, 256, 256)
    for variant, dtype in (("fp32", torch.float32), ("bf16 autocast (--precision bf16)", torch.bfloat16)):
        def call(dtype=dtype):
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                onestep.restore(y, op, generator=torch.Generator().manual_seed(0))

        s = median_seconds(call, args.repeat)
        rows.append({"net": "onestep-sr restore() x4", "variant": variant, "size": "256x256 -> 1024x1024", "gflop": None,
                     "seconds": round(s, 3), "gflop_per_s": None})
        print(rows[-1], flush=True)
    report = {"machine": cpu_model(), "threads": args.threads, "date": f"{datetime.now(timezone.utc):%Y-%m-%d}",
              "commit": git_commit(), "rows": rows}
    Path(args.out).with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# CPU time of the diffusion nets", "", f"Machine {report['machine']}, {args.threads} threads, {report['date']}, "
             f"commit {report['commit']}. Command: `python benchmarks/studies/diffusion_speed.py {' '.join(sys.argv[1:])}`", "",
             " ".join(__doc__.split("\n\n")[2].split()), "",  # the protocol paragraph
             "| net | variant | size | GFLOP | s | GFLOP/s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['variant']} | {r['size']} | {r['gflop'] if r['gflop'] is not None else ''} | "
                     f"{r['seconds']:.3f} | {r['gflop_per_s'] if r['gflop_per_s'] is not None else ''} |")
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
