"""Peak memory and time of streaming a large GeoTIFF through `restore denoise`, per raster size.

    python benchmarks/studies/large_raster.py --sizes 5000 20000 --out benchmarks/results/large_raster

Each size gets a synthetic single-band 12-bit (uint16, 0-4095) GeoTIFF: the
scikit-image camera tiled over the scene, plus Gaussian noise of sigma 10/255
of full scale, written block by block (the generator never holds the raster
either). The CLI then runs in a child process on it, and the child's peak
resident memory is its kernel high-water mark: the same streaming code path
every restorer uses, with the fast ``nlm`` restorer by default.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from restore.bench.provenance import cpu_model, git_commit

SIGMA_255 = 10.0
FULL_SCALE = 4095


def make_scene(path: Path, size: int, seed: int = 0) -> None:
    """Write the synthetic size x size uint16 GeoTIFF, 1024 rows at a time."""
    import rasterio
    from rasterio.transform import from_origin
    from skimage import data

    cam = data.camera().astype(np.float32) / 255 * 0.8 + 0.1
    rng = np.random.default_rng(seed)
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint16", crs="EPSG:32631",
                   transform=from_origin(300000.0, 5000000.0, 0.5, 0.5), tiled=True, blockxsize=512,
                   blockysize=512, BIGTIFF="IF_SAFER")
    tmp = path.with_suffix(".partial.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, size, 1024):
            rows = min(1024, size - r0)
            idx_r = (np.arange(r0, r0 + rows) % 512)[:, None]
            idx_c = (np.arange(size) % 512)[None, :]
            clean = cam[idx_r, idx_c]
            noisy = clean + rng.normal(0, SIGMA_255 / 255, clean.shape).astype(np.float32)
            counts = np.clip(np.rint(noisy * FULL_SCALE), 0, FULL_SCALE).astype(np.uint16)
            dst.write(counts[None], window=rasterio.windows.Window(0, r0, size, rows))
    os.replace(tmp, path)


def _proc_mib(pid: int, field: str) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith(field)).split()[1]) / 1024
    except (OSError, StopIteration, ValueError):
        return None


def run_cli(args: list[str]) -> tuple[float, float, int, list[tuple[float, float]]]:
    """Run ``restore`` with ``args`` in a child.

    Returns wall seconds, the child's peak RSS in MiB, its exit code, and
    (seconds, RSS MiB) samples every half second (to see whether it creeps).
    The peak is the kernel's high-water mark (VmHWM) of the child's own image,
    read until it exits: ``wait4``'s ru_maxrss would also count the pages the
    child shared with this (large) process between fork and exec.
    """
    cmd = [sys.executable, "-m", "restore.cli", *args]
    t = time.perf_counter()
    child = subprocess.Popen(cmd)
    samples, peak = [], 0.0
    while child.poll() is None:
        rss, hwm = _proc_mib(child.pid, "VmRSS"), _proc_mib(child.pid, "VmHWM")
        if rss is not None and hwm is not None:
            samples.append((time.perf_counter() - t, rss))
            peak = max(peak, hwm)
        time.sleep(0.25)
    return time.perf_counter() - t, peak, child.returncode, samples


def quarter_peaks(samples: list[tuple[float, float]]) -> list[float]:
    """Highest sampled RSS in each quarter of the run (flat if memory does not creep)."""
    if not samples:
        return []
    end = samples[-1][0]
    return [round(max((r for t, r in samples if q * end / 4 <= t <= (q + 1) * end / 4), default=0.0), 1)
            for q in range(4)]


def check_output(src: Path, dst: Path) -> dict:
    """Georeferencing kept, and the restored scene closer to the clean one than the noisy one, on a crop."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(src) as a, rasterio.open(dst) as b:
        same_geo = a.crs == b.crs and a.transform == b.transform and (a.width, a.height) == (b.width, b.height)
        window = Window(1000, 1000, 512, 512)
        noisy = a.read(1, window=window).astype(np.float64) / FULL_SCALE
        out = b.read(1, window=window).astype(np.float64) / FULL_SCALE
    from skimage import data

    cam = data.camera().astype(np.float64) / 255 * 0.8 + 0.1
    clean = np.roll(np.roll(cam, -(1000 % 512), 0), -(1000 % 512), 1)

    def psnr(x):
        return float(10 * np.log10(1 / np.mean((x - clean) ** 2)))

    return {"georeferencing_kept": bool(same_geo), "psnr_noisy": round(psnr(noisy), 2), "psnr_out": round(psnr(out), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    ap.add_argument("--model", default="nlm")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/restore-large-raster"))
    ap.add_argument("--keep", action="store_true", help="keep the synthetic rasters")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    records = []
    for size in args.sizes:
        src, dst = args.workdir / f"scene_{size}.tif", args.workdir / f"scene_{size}_restored.tif"
        if not src.exists():
            make_scene(src, size)
        cli_args = ["denoise", str(src), "-o", str(dst), "--model", args.model, "--sigma", str(SIGMA_255),
                    "--value-range", str(FULL_SCALE), "--tile", str(args.tile), "--overwrite", "-q"]
        seconds, rss, code, samples = run_cli(cli_args)
        if code != 0:
            raise SystemExit(f"restore failed on the {size} x {size} scene (exit {code})")
        record = {"size": size, "megapixels": size * size / 1e6, "model": args.model, "tile": args.tile,
                  "seconds": round(seconds, 1), "megapixels_per_s": round(size * size / 1e6 / seconds, 2),
                  "peak_rss_mib": round(rss, 1), "rss_quarter_peaks_mib": quarter_peaks(samples),
                  **check_output(src, dst)}
        print(json.dumps(record), flush=True)
        records.append(record)
        if not args.keep:
            src.unlink()
            dst.unlink()
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
            "cpu": cpu_model(), "cores": os.cpu_count(), "sigma_255": SIGMA_255, "value_range": FULL_SCALE}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
    lines = [
        f"# Streaming a large GeoTIFF: `restore denoise --model {args.model}`",
        "",
        f"{meta['date']}, commit {meta['commit']}, {meta['cpu']} ({meta['cores']} cores). Synthetic 1-band uint16 "
        f"12-bit scene (value range {FULL_SCALE}), noise sigma {SIGMA_255:g}/255, tile {args.tile}, blocks 2048.",
        f"Reproduce: `python benchmarks/studies/large_raster.py --sizes {' '.join(map(str, args.sizes))} --out {args.out}`",
        "",
        "| size | Mpx | seconds | Mpx/s | peak RSS (MiB) | RSS peak per quarter of the run (MiB) | "
        "CRS+transform kept | PSNR noisy -> out (crop) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(f"| {r['size']} x {r['size']} | {r['megapixels']:.0f} | {r['seconds']} | {r['megapixels_per_s']} | "
                     f"{r['peak_rss_mib']} | {' / '.join(map(str, r['rss_quarter_peaks_mib']))} | "
                     f"{r['georeferencing_kept']} | {r['psnr_noisy']} -> {r['psnr_out']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
