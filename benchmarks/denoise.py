"""Gaussian-denoising benchmark: PSNR, SSIM and speed of several methods on one dataset.

Every method sees the same noisy image ``y = x + sigma/255 * n`` (float noise,
not clipped, not quantised: the LIDIA paper's protocol), seeded per
(seed, sigma, image index). Results go to ``<out>.json`` (per-image records,
summary, protocol, machine, date, commit) and ``<out>.md`` (tables + protocol).

Example:
    python benchmarks/denoise.py --dataset ../shared/data/BSD68 --sigma 15 25 50 \\
        --methods lidia,bm3d,nlm --out benchmarks/results/bsd68_gray --limit 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without `pip install -e .` too

import restore  # noqa: E402
from restore.bench.cases import seed_for  # noqa: E402
from restore.bench.methods import build_method  # noqa: E402
from restore.bench.provenance import cpu_model, git_commit, machine_info  # noqa: E402, F401 - other scripts import them from here
from restore.bench.published import published_for  # noqa: E402
from restore.errors import RestoreError  # noqa: E402
from restore.io import list_images, read_image  # noqa: E402
from restore.metrics import psnr, ssim  # noqa: E402
from restore.operators import Denoise  # noqa: E402
from restore.pipeline import PRECISIONS  # noqa: E402

# A restore call on this crop before timing, so one-off start-up costs are not billed to image 1.
WARMUP_SIDE = 64

Method = Callable[[torch.Tensor, float], torch.Tensor]

# Published numbers (LIDIA paper tables), kept once in restore.bench.published; never run here.
PUBLISHED = {
    mode: {"dataset": name, "rows": {m: {int(k.split()[1]): v for k, v in row.items()}
                                      for m, row in published_for("denoise", name, {channels}).rows.items()}}
    for mode, name, channels in (("gray", "BSD68 (gray)", 1), ("rgb", "CBSD68 (color)", 3))
}


# ------------------------------------------------------------------ arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, type=Path, help="folder of clean images")
    p.add_argument("--sigma", nargs="+", type=float, default=[15.0, 25.0, 50.0], help="noise std, 0-255 units")
    p.add_argument("--methods", default="lidia,bm3d,nlm", help="comma-separated: bm3d or registered restorers")
    p.add_argument("--out", required=True, type=Path, help="output path without extension")
    p.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    p.add_argument("--color", choices=("gray", "rgb", "auto"), default="auto", help="channel handling")
    p.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--device", default="cpu", help="device for the learned restorers")
    p.add_argument("--resume", action="store_true", help="keep matching records of an existing <out>.json")
    args = p.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not args.methods:
        p.error("--methods is empty")
    if any(not 0 < s <= 255 for s in args.sigma):
        p.error(f"--sigma values must be in (0, 255], got {args.sigma}")
    if args.limit is not None and args.limit < 1:
        p.error(f"--limit must be >= 1, got {args.limit}")
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    return args


# ------------------------------------------------------------------ data


def load_clean(path: Path, color: str) -> torch.Tensor:
    """Read one clean image as 1 x C x H x W float32 in [0, 1] (8-bit values / 255)."""
    x = read_image(path).pixels
    if color == "gray" and x.shape[1] == 3:
        # BT.601 luma, as MATLAB's rgb2gray; kept in float, not re-quantised.
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        x = (x * weights).sum(dim=1, keepdim=True)
    if color == "rgb" and x.shape[1] != 3:
        raise RestoreError(f"{path.name} has {x.shape[1]} channel(s); --color rgb needs RGB images")
    if color == "gray" and x.shape[1] != 1:
        raise RestoreError(f"{path.name} has {x.shape[1]} channels; --color gray needs gray or RGB images")
    return x


def noise_seed(seed: int, sigma: float, index: int) -> int:
    """A 63-bit generator seed from (seed, sigma, image index): ``restore bench``'s rule, so both give the same inputs."""
    return seed_for(seed, f"{sigma:g}", index)


def make_noisy(x: torch.Tensor, sigma: float, seed: int, index: int) -> torch.Tensor:
    """y = x + sigma/255 * N(0, 1): float32, not clipped, not quantised."""
    generator = torch.Generator().manual_seed(noise_seed(seed, sigma, index))
    return Denoise(sigma / 255).measure(x, generator)


# ------------------------------------------------------------------ methods


def bm3d_method() -> Method:
    """BM3D / CBM3D as ``restore bench`` runs it (restore.bench.methods)."""
    run = build_method("bm3d", "denoise", "cpu").run
    return lambda y, sigma: run(y, Denoise(sigma / 255), 0)[0]


def restorer_method(spec: str, device: str) -> Method:
    """A registered restorer, loaded once with its shipped weights.

    ``spec`` is a registry name with optional constructor options:
    ``lidia:adapt=internal`` loads ``restore.load("lidia", adapt="internal")``;
    ``precision=bf16`` (or fp16) runs it under autocast, as ``--precision`` does in the CLI.
    """
    name, _, opts = spec.partition(":")
    kwargs = dict(kv.split("=", 1) for kv in opts.split(";") if kv)
    dtype = PRECISIONS[kwargs.pop("precision", "fp32")]
    restorer = restore.load(name, device=device, **kwargs)
    device_type = torch.device(device).type

    def run(y: torch.Tensor, sigma: float) -> torch.Tensor:
        with torch.autocast(device_type, dtype=dtype, enabled=dtype != torch.float32):
            out = restorer.restore(y, Denoise(sigma / 255)).image
        # Moving the result to the CPU also waits for asynchronous GPU work, inside the timing.
        return out.float().cpu()

    return run


def build_methods(names: list[str], device: str) -> dict[str, Method]:
    """Name -> callable(y, sigma_255) returning the 1 x C x H x W estimate on the CPU."""
    return {n: bm3d_method() if n == "bm3d" else restorer_method(n, device) for n in names}


def timed(method: Method, y: torch.Tensor, sigma: float) -> tuple[torch.Tensor, float]:
    """The estimate and the seconds the call took (perf_counter around the call only)."""
    start = time.perf_counter()
    out = method(y, sigma)
    return out, time.perf_counter() - start


# ------------------------------------------------------------------ provenance (restore.bench.provenance)


def protocol(args: argparse.Namespace, names: list[str]) -> dict:
    """What was measured and how, as data (the Markdown repeats it in words)."""
    return {
        "dataset": str(args.dataset),
        "images": names,
        "color": args.color,
        "sigmas_255": args.sigma,
        "seed": args.seed,
        "clean": "8-bit image / 255, float32 (--color gray: BT.601 luma of RGB, not re-quantised)",
        "noise": "y = x + sigma/255 * n, n ~ N(0, 1) float32 from torch.Generator seeded with "
        "sha256('seed/sigma/index')[:8]; float, not clipped, not quantised; the same y for every method",
        "output": "clamped to [0, 1], not quantised",
        "psnr": "10 log10(1 / MSE), full image (no border crop), all channels, data range 1; mean over images",
        "ssim": "restore.metrics.ssim: Gaussian 11x11, sigma 1.5, per channel, no downsampling, data range 1",
        "timing": f"time.perf_counter around the restore call only (result moved to the CPU inside it), "
        f"after one warm-up call on a {WARMUP_SIDE}x{WARMUP_SIDE} crop; MP/s = total megapixels / total seconds",
        "methods": {
            "bm3d": "bm3d PyPI package, profile 'np', sigma_psd = sigma/255; bm3d_rgb (opponent colour space) for RGB",
            "nlm": "OpenCV non-local means on the input quantised to uint8 (clipped, rounded); "
            "see restore/restorers/nlm.py",
        },
    }


# ------------------------------------------------------------------ results


def summarise(records: list[dict], methods: list[str], sigmas: list[float]) -> list[dict]:
    """Mean PSNR / SSIM, seconds per image and MP/s per (method, sigma)."""
    rows = []
    for sigma in sigmas:
        at_sigma = [r for r in records if r["sigma"] == sigma]
        for method in methods:
            rs = [r for r in at_sigma if r["method"] == method]
            if not rs:
                continue
            seconds = sum(r["seconds"] for r in rs)
            rows.append({
                "method": method,
                "sigma": sigma,
                "images": len(rs),
                "psnr": float(np.mean([r["psnr"] for r in rs])),
                "ssim": float(np.mean([r["ssim"] for r in rs])),
                "seconds_per_image": seconds / len(rs),
                "mp_per_s": sum(r["megapixels"] for r in rs) / seconds if seconds > 0 else None,
                "input_psnr": float(np.mean([r["input_psnr"] for r in rs])),
            })
    return rows


def published_rows(args: argparse.Namespace, channels: set[int]) -> dict | None:
    """The paper's numbers for this dataset and channel mode, or None when they do not apply."""
    name = args.dataset.name.lower()
    if channels == {1} and "bsd68" in name and "cbsd" not in name:
        return PUBLISHED["gray"]
    if channels == {3} and "cbsd68" in name:
        return PUBLISHED["rgb"]
    return None


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def markdown(report: dict) -> str:
    """The Markdown page: measured table, published reference rows, protocol, machine."""
    proto, machine = report["protocol"], report["machine"]
    lines = [
        f"# Denoising benchmark: {Path(proto['dataset']).name}",
        "",
        f"{len(proto['images'])} images, color mode `{proto['color']}`, seed {proto['seed']}. "
        f"{report['date']}, commit `{report['commit']}`, {machine['cpu']} "
        f"({machine['cores']} cores, {machine['torch_threads']} torch threads, device {machine['device']}).",
        "",
        "| method | sigma | images | PSNR (dB) | SSIM | s / image | MP/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for sigma in proto["sigmas_255"]:
        rows = [r for r in report["summary"] if r["sigma"] == sigma]
        if rows:
            noisy = rows[0]
            lines.append(f"| noisy input | {sigma:g} | {noisy['images']} | {noisy['input_psnr']:.2f} | — | — | — |")
        for r in rows:
            lines.append(
                f"| {r['method']} | {sigma:g} | {r['images']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                f"{r['seconds_per_image']:.3f} | {_fmt(r['mp_per_s'], '.3f')} |"
            )
    lines += _published_md(report.get("published"), proto["sigmas_255"])
    lines += ["", "## Protocol", ""]
    lines += [f"- **{k}**: {v}" for k, v in proto.items() if k not in ("images", "methods")]
    lines += [f"- **{k}**: {v}" for k, v in proto["methods"].items()]
    lines += ["", "## Machine", "", "```", json.dumps(machine, indent=2), "```", ""]
    return "\n".join(lines)


def _published_md(published: dict | None, sigmas: list[float]) -> list[str]:
    if not published:
        return []
    head = " | ".join(f"sigma {s:g}" for s in sigmas)
    lines = [
        "",
        f"### Published, not run here ({published['dataset']}, full 68 images; LIDIA paper)",
        "",
        "These are the paper's numbers, copied for reference; the rows above are the only ones measured here.",
        "",
        f"| method (published) | {head} |",
        "|---|" + "---:|" * len(sigmas),
    ]
    for method, values in published["rows"].items():
        cells = " | ".join(_fmt(values.get(int(s)) if float(s).is_integer() else None, ".2f") for s in sigmas)
        lines.append(f"| {method} (published, not run here) | {cells} |")
    return lines


def out_path(args: argparse.Namespace, suffix: str) -> Path:
    """<out> plus a suffix (appended, so that dots in the name survive)."""
    return args.out.with_name(args.out.name + suffix)


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file and a rename, so a killed run never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(args: argparse.Namespace, report: dict) -> None:
    """<out>.json and <out>.md."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out_path(args, ".json"), json.dumps(report, indent=1) + "\n")
    write_atomic(out_path(args, ".md"), markdown(report))


def previous_records(args: argparse.Namespace, proto: dict) -> dict[tuple, dict]:
    """Records of an earlier run with the same protocol, keyed by (method, sigma, image)."""
    path = out_path(args, ".json")
    if not args.resume or not path.is_file():
        return {}
    old = json.loads(path.read_text())
    # Records are keyed by (method, sigma, image): a run over other sigmas or images reuses what matches.
    free = ("images", "sigmas_255")
    same = {k: v for k, v in old.get("protocol", {}).items() if k not in free} == {
        k: v for k, v in proto.items() if k not in free
    }
    if not same:
        print(f"--resume: {path} was made with another protocol; starting afresh", file=sys.stderr)
        return {}
    return {(r["method"], r["sigma"], r["image"]): r for r in old.get("records", [])}


# ------------------------------------------------------------------ main loop


def evaluate(method: Method, x: torch.Tensor, y: torch.Tensor, sigma: float) -> dict:
    """Run one method on one noisy image and measure it."""
    out, seconds = timed(method, y, sigma)
    out = out.clamp(0, 1)
    megapixels = x.shape[-2] * x.shape[-1] / 1e6
    return {
        "psnr": float(psnr(out, x)),
        "ssim": float(ssim(out, x)),
        "seconds": seconds,
        "megapixels": megapixels,
        "mp_per_s": megapixels / seconds if seconds > 0 else None,
    }


def warm_up(methods: dict[str, Method], x: torch.Tensor, sigma: float, seed: int) -> None:
    """One untimed call per method on a small crop (lazy initialisation, allocator warm-up)."""
    crop = x[..., :WARMUP_SIDE, :WARMUP_SIDE]
    y = make_noisy(crop, sigma, seed, -1)
    for method in methods.values():
        method(y, sigma)


def run(args: argparse.Namespace) -> dict:
    """The whole benchmark; writes the report after every image so that progress survives a kill."""
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    paths = list_images(args.dataset)[: args.limit]
    if not paths:
        raise RestoreError(f"{args.dataset}: no images found")
    methods = build_methods(args.methods, args.device)
    proto = protocol(args, [p.name for p in paths])
    done = previous_records(args, proto)
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine_info(args.device),
        "protocol": proto,
        "published": None,
        "summary": [],
        "records": [],
    }
    cleans = {p: load_clean(p, args.color) for p in paths}
    report["published"] = published_rows(args, {x.shape[1] for x in cleans.values()})
    warm_up(methods, next(iter(cleans.values())), args.sigma[0], args.seed)
    # Until this run reaches a record, the earlier one stays, so a killed run loses nothing.
    pending = dict(done)
    all_methods = list(dict.fromkeys(args.methods + [key[0] for key in done]))
    all_sigmas = sorted({*args.sigma, *(key[1] for key in done)})
    for sigma in args.sigma:
        for index, path in enumerate(paths):
            x = cleans[path]
            y = make_noisy(x, sigma, args.seed, index)
            input_psnr = float(psnr(y, x))
            parts = []
            for name, method in methods.items():
                rec = done.get((name, sigma, path.name))
                if rec is None or rec["index"] != index:  # the index seeds the noise
                    rec = {"image": path.name, "index": index, "sigma": sigma, "method": name,
                           "channels": x.shape[1], "height": x.shape[-2], "width": x.shape[-1],
                           "input_psnr": input_psnr, **evaluate(method, x, y, sigma)}
                pending.pop((name, sigma, path.name), None)
                report["records"].append(rec)
                parts.append(f"{name} {rec['psnr']:.2f} dB {rec['seconds']:.2f} s")
            print(f"sigma {sigma:g} [{index + 1}/{len(paths)}] {path.name} (noisy {input_psnr:.2f} dB) | "
                  + " | ".join(parts), flush=True)
            snapshot = {**report, "records": report["records"] + list(pending.values())}
            snapshot["summary"] = summarise(snapshot["records"], all_methods, all_sigmas)
            write_report(args, snapshot)
    report["records"] += list(pending.values())
    report["summary"] = summarise(report["records"], all_methods, all_sigmas)
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors become one line on stderr and a non-zero exit."""
    args = parse_args(argv)
    try:
        report = run(args)
    except RestoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for r in report["summary"]:
        print(f"{r['method']:>8} sigma {r['sigma']:>4g}: {r['psnr']:.2f} dB  SSIM {r['ssim']:.4f}  "
              f"{r['seconds_per_image']:.3f} s/image")
    print(f"wrote {out_path(args, '.json')} and {out_path(args, '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
