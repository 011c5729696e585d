"""Super-resolution benchmark: Y-channel and RGB PSNR/SSIM, LPIPS where available, seconds and network evaluations.

    python benchmarks/sr.py --scale 4 --datasets ../shared/data/Set5 ../shared/data/Set14 ../shared/data/BSD100 \
        --methods bicubic,rddm:steps=1,rddm:steps=5,rddm:steps=15,onestep-sr --out benchmarks/results/sr_x4

Protocol (written into every report): the clean image is cropped to a multiple of
the scale (top-left kept); the low-resolution input is the toolkit's bicubic
Downsample (MATLAB imresize, antialiased) of it, rounded to 8 bits as a saved
image would be; no noise. Y channel (ITU-R BT.601, 16-235) PSNR/SSIM with a border
of ``scale`` pixels cropped (the usual SR protocol), RGB PSNR with the same crop,
outputs clipped to [0, 1] and not quantised. Gray images go through the
restorers as they are (the colour nets replicate them). Method specs are
``name`` or ``name:key=value`` (e.g. ``rddm:steps=5``), with ``@bf16`` appended
to run under bfloat16 autocast (what ``--precision bf16`` does). Seconds are wall time per
image on this machine (after one warm-up call), network evaluations as the
restorer reports them. Finished (dataset, image, method) records are kept in
``<out>.jsonl`` and not redone.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from denoise import cpu_model, git_commit  # noqa: E402

import restore  # noqa: E402
from restore.io import list_images, read_image  # noqa: E402
from restore.metrics import MetricUnavailable, lpips_distance, psnr, ssim, to_y  # noqa: E402
from restore.operators import Downsample  # noqa: E402


def parse_spec(spec: str) -> tuple[str, dict]:
    """"rddm:steps=5" -> ("rddm", {"steps": 5}); a trailing "@bf16" (the autocast precision) is not an option."""
    name, _, opts = spec.split("@")[0].partition(":")
    kwargs = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        kwargs[key] = int(value) if value.lstrip("-").isdigit() else float(value)
    return name, kwargs


def split_specs(text: str) -> list[str]:
    """Comma-separated specs, where a spec's own options follow its colon ("rddm:steps=5,bicubic")."""
    specs: list[str] = []
    for part in text.split(","):
        if "=" in part and ":" not in part and specs:
            specs[-1] += "," + part
        else:
            specs.append(part)
    return specs


def finished_records(path: Path, key: tuple[str, ...]) -> dict[tuple, dict]:
    """Records of an earlier run's JSON lines by ``key`` fields, so a resumed run skips them."""
    if not path.is_file():
        return {}
    records = (json.loads(line) for line in path.read_text().splitlines())
    return {tuple(r[k] for k in key): r for r in records}


def precision(spec: str) -> torch.autocast:
    """bfloat16 autocast for specs ending in "@bf16" (as ``--precision bf16`` runs them), else float32."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec.endswith("@bf16"))


def low_resolution(x: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(HR cropped to a multiple of scale, its 8-bit bicubic LR)."""
    h, w = (s - s % scale for s in x.shape[-2:])
    hr = x[..., :h, :w]
    lr = (Downsample(scale).forward(hr).clamp(0, 1) * 255).round() / 255
    return hr, lr


def scores(out: torch.Tensor, hr: torch.Tensor, scale: int) -> dict:
    out = out.clamp(0, 1)
    rgb = out.shape[1] == 3
    y_out, y_hr = (to_y(out), to_y(hr)) if rgb else (out, hr)
    rec = {"psnr_y": float(psnr(y_out, y_hr, crop=scale)), "ssim_y": float(ssim(y_out, y_hr, crop=scale)),
           "psnr_rgb": float(psnr(out, hr, crop=scale))}
    try:
        rec["lpips"] = float(lpips_distance(out if rgb else out.expand(-1, 3, -1, -1), hr if rgb else hr.expand(-1, 3, -1, -1)))
    except MetricUnavailable:
        rec["lpips"] = None
    return rec


def run(args: argparse.Namespace) -> list[dict]:
    out_jsonl = Path(args.out).with_suffix(".jsonl")
    done = finished_records(out_jsonl, ("dataset", "image", "method"))
    specs = split_specs(args.methods)
    restorers = {spec: restore.load(parse_spec(spec)[0], **parse_spec(spec)[1]) for spec in specs}
    op = Downsample(args.scale)
    warm = torch.rand(1, 3, 16, 16)
    for r in restorers.values():
        r.restore(warm, op, generator=torch.Generator().manual_seed(0))
    records = list(done.values())
    with out_jsonl.open("a") as sink:
        for folder in args.datasets:
            dataset = Path(folder).name
            for path in list_images(Path(folder))[: args.limit or None]:
                hr, lr = low_resolution(read_image(path).pixels, args.scale)
                for spec, restorer in restorers.items():
                    if (dataset, path.stem, spec) in done:
                        continue
                    start = time.perf_counter()
                    with precision(spec):
                        res = restorer.restore(lr, op, generator=torch.Generator().manual_seed(args.seed))
                    seconds = time.perf_counter() - start
                    rec = {"dataset": dataset, "image": path.stem, "method": spec, "seconds": round(seconds, 3),
                           "evaluations": res.info.get("evaluations", res.info.get("steps", 0)),
                           **scores(res.image, hr, args.scale)}
                    sink.write(json.dumps(rec) + "\n")
                    sink.flush()
                    records.append(rec)
                    print(f"{dataset} {path.stem} {spec}: {rec['psnr_y']:.2f} dB Y, {seconds:.2f} s", flush=True)
    return records


def markdown(records: list[dict], args: argparse.Namespace) -> str:
    lines = [f"# Super-resolution x{args.scale}", "",
             f"Machine: {cpu_model()}, {torch.get_num_threads()} threads; date {datetime.now(timezone.utc):%Y-%m-%d}; "
             f"commit {git_commit()}. Command: `python benchmarks/sr.py {' '.join(sys.argv[1:])}`", "",
             "Protocol: " + " ".join(__doc__.split("Protocol (written into every report):")[1].split("\n\n")[0].split()), ""]
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        lines += [f"## {dataset}", "", "| method | images | PSNR Y | SSIM Y | PSNR RGB | LPIPS | s / image | evaluations |",
                  "|---|---|---|---|---|---|---|---|"]
        for spec in dict.fromkeys(r["method"] for r in records):
            rows = [r for r in records if r["dataset"] == dataset and r["method"] == spec]
            if not rows:
                continue
            mean = lambda k, rows=rows: sum(r[k] for r in rows) / len(rows)  # noqa: E731
            lp = [r["lpips"] for r in rows if r["lpips"] is not None]
            lines.append(f"| {spec} | {len(rows)} | {mean('psnr_y'):.2f} | {mean('ssim_y'):.4f} | {mean('psnr_rgb'):.2f} | "
                         f"{sum(lp) / len(lp) if lp else float('nan'):.4f} | {mean('seconds'):.2f} | {rows[0]['evaluations']} |")
        lines.append("")
    return "\n".join(lines).replace("| nan |", "| n/a |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--datasets", nargs="+", required=True)
    ap.add_argument("--methods", default="bicubic,onestep-sr")
    ap.add_argument("--limit", type=int, default=0, help="first N images of each dataset (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True, help="output stem: <out>.jsonl and <out>.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    records = run(args)
    Path(args.out).with_suffix(".md").write_text(markdown(records, args) + "\n")


if __name__ == "__main__":
    main()
