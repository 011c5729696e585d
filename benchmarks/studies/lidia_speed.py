"""Where LIDIA's time goes on one image: patch search, network, total; FLOPs and GFLOP/s.

    python benchmarks/studies/lidia_speed.py --image ../shared/data/BSD68/test001.png --sigma 25 \\
        --precision fp32 bf16 --out benchmarks/results/lidia_speed_gray

Times are the median of ``--repeat`` runs after one warm-up, with
``torch.inference_mode()`` and BatchNorm folded, as the restorer runs. One row
per ``--precision``: bf16/fp16 run under autocast, as ``--precision`` does in
the CLI. Autocast also reaches the patch search's box-sum convolutions, so
rounded distances change some neighbour choices; the quality figures of this
mode (``restore bench --task denoise --models lidia:precision=bf16``) include that.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

import restore
from restore.bench.provenance import cpu_model, git_commit
from restore.io import read_image
from restore.nets.lidia import flops_per_pixel
from restore.operators import Denoise
from restore.pipeline import PRECISIONS


def median_seconds(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, required=True)
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=sorted(PRECISIONS))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = read_image(args.image).pixels
    y = Denoise(args.sigma / 255).measure(x, torch.Generator().manual_seed(0))
    rows = [measure(x, y, args, precision) for precision in args.precision]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    md = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    md += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
    args.out.with_suffix(".md").write_text("# LIDIA speed\n\n" + "\n".join(md) + "\n")
    print(json.dumps(rows, indent=2))


def measure(x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, precision: str) -> dict:
    """One row: search, network and whole-restore seconds at ``precision``, with FLOPs."""
    den = restore.load("lidia")
    name, _ = den.pick_model("gray" if x.shape[1] == 1 else "color", args.sigma)
    net = den._build(name).fold_batchnorm()
    ym = (y * 2 - 1) - (y * 2 - 1).mean()
    dtype = PRECISIONS[precision]
    autocast = lambda: torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32)  # noqa: E731
    with torch.inference_mode(), autocast():
        search = median_seconds(lambda: net._scales(ym), args.repeat)
        network_total = median_seconds(lambda: net(ym, chunk=den.chunk), args.repeat)
        total = median_seconds(lambda: den.restore(y, Denoise(args.sigma / 255)), args.repeat)
    h, w = x.shape[-2:]
    positions = (h + net.span) * (w + net.span)
    gflop = flops_per_pixel(net.cfg) * positions / 1e9
    return {
        "image": args.image.name, "size": f"{w}x{h}", "channels": x.shape[1], "weights": name, "precision": precision,
        "search_s": round(search, 3), "net_s": round(network_total - search, 3), "total_s": round(total, 3),
        "flops_per_pixel": flops_per_pixel(net.cfg), "gflop": round(gflop, 1),
        "gflops_achieved": round(gflop / max(network_total - search, 1e-9), 1),
        "threads": args.threads, "cpu": cpu_model(), "torch": torch.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
    }


if __name__ == "__main__":
    main()
