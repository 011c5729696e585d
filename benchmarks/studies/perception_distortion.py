"""Deep OT's perception/distortion trade-off: PSNR against the latent W2 distance to clean images, per alpha.

    python benchmarks/studies/perception_distortion.py --calibration ../shared/data/BSDS500/val \
        --exclude ../shared/data/CBSD68 --test ../shared/data/CBSD68 --limit 12 --threads 1 \
        --out benchmarks/results/perception_distortion

Calibration: BSDS500 val images that are not among the 68 CBSD68 scenes (by file
stem), sorted by name, central 256 x 256 crops; the first 16 are degraded (seed =
index) and restored, the next 16 are the natural set: unpaired, no scene in both.
Evaluation: the first --limit CBSD68 images (sorted), central 256 x 256 crops,
degraded with seed 1000 + index. Tasks: denoising at sigma 25 (0-255), RGB; x4
super-resolution (bicubic downsampling, no noise). For each restorer,
configuration and alpha: PSNR (RGB, clipped to [0, 1], no border crop, float,
mean over images) and the squared Gelbrich distance between the raw latent
statistics (cae-a0483, 1 x 1 patches, D = 96) of the outputs and those of the
clean crops of the same images (3 x 3 patches, D = 864, in the JSON: 3.6
samples per dimension, noisy); LPIPS (alex) where its backbone is present.
x_alpha = x_restored + alpha (x_transported - x_restored), exactly as the tuner
computes it. Configurations: 'default' (1 x 1 patches of the latent's detail,
5 x 5-cell local mean kept out, residual decoding); 'raw, residual' (no local
mean); 'raw, direct' (no local mean, x_transported = D(T z): the paper's map at
p = 1); 'default, paired' (the natural set is the clean originals of the 16
degraded calibration scenes instead of 16 other scenes).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

import restore
from restore.bench.crops import read_centre_crop
from restore.bench.provenance import cpu_model, git_commit
from restore.io import list_images
from restore.metrics import MetricUnavailable, lpips_distance, psnr
from restore.operators import Denoise, Downsample
from restore.tuners import DeepOT, gelbrich_distance
from restore.tuners.gaussian_ot import GaussianStats, StatsAccumulator
from restore.tuners.latent_codec import LatentCodec
from restore.tuners.latent_patches import unfold_patches

CROP = 256
TEST_SEED = 1000
TASKS = {"denoise": lambda: Denoise(sigma=25 / 255), "sr": lambda: Downsample(4)}
TASK_NAMES = {"denoise": "denoise sigma 25", "sr": "SR x4"}
# name: (local_mean cells, residual decoding, natural set)
CONFIGURATIONS = {
    "default": (5, True, "unpaired"),
    "raw, residual": (0, True, "unpaired"),
    "raw, direct (paper)": (0, False, "unpaired"),
    "default, paired": (5, True, "paired"),
}


def calibration_sets(folder: Path, exclude: Path, count: int) -> tuple[list[str], list[str]]:
    """Names of the degraded and the natural calibration images: disjoint, none a test scene."""
    held_out = {p.stem for p in list_images(exclude)}
    names = [p.name for p in list_images(folder) if p.stem not in held_out]
    if len(names) < 2 * count:
        raise SystemExit(f"{folder} has {len(names)} images outside {exclude}; need {2 * count}")
    return names[:count], names[count : 2 * count]


def restore_all(restorer, op, images: list[torch.Tensor], seed: int) -> tuple[list[torch.Tensor], float]:
    """Degrade (seed + index) and restore each image as the tuner's calibration does; seconds spent restoring."""
    outs, seconds = [], 0.0
    for index, x in enumerate(images):
        y = op.measure(x, torch.Generator().manual_seed(seed + index))
        start = time.perf_counter()
        outs.append(restore.Pipeline(restorer, op, tile=512, seed=seed + index, log=lambda _: None).run(y).image)
        seconds += time.perf_counter() - start
    return outs, seconds


def lpips_or_none(images: list[torch.Tensor], clean: list[torch.Tensor]) -> float | None:
    try:
        return round(sum(float(lpips_distance(a, b)) for a, b in zip(images, clean)) / len(images), 4)
    except MetricUnavailable:
        return None


def raw_latent_stats(codec: LatentCodec, images: list[torch.Tensor]) -> dict[int, GaussianStats]:
    """Raw latent statistics with 1 x 1 and 3 x 3 patches, each image encoded once."""
    accumulators = {p: StatsAccumulator(codec.latent_channels * p * p) for p in (1, 3)}
    for x in images:
        z, where = codec.encode(x)
        rows = torch.arange(z.shape[-2])[where.latent_rows()]
        cols = torch.arange(z.shape[-1])[where.latent_cols()]
        keep = (rows[:, None] * z.shape[-1] + cols[None, :]).flatten()
        for p, acc in accumulators.items():
            acc.add(unfold_patches(z, p)[0][keep])
    return {p: acc.stats() for p, acc in accumulators.items()}


def sweep(tuner: DeepOT, outputs: list[torch.Tensor], clean: list[torch.Tensor], alphas: list[float],
          clean_stats: dict) -> list[dict]:
    """Mean PSNR, latent W2 (p = 1 and 3) to the clean crops, LPIPS, for each alpha."""
    changes = [tuner.transport_change(x) for x in outputs]
    rows = []
    for alpha in alphas:
        images = [x + alpha * c for x, c in zip(outputs, changes)] if alpha else outputs
        stats = raw_latent_stats(tuner.codec, images)
        w2 = {p: round(gelbrich_distance(stats[p], clean_stats[p]), 2) for p in clean_stats}
        scores = [float(psnr(x.clamp(0, 1), y)) for x, y in zip(images, clean)]
        rows.append({"alpha": alpha, "psnr": round(sum(scores) / len(scores), 3), "latent_w2": w2[1], "latent_w2_p3": w2[3],
                     "lpips": lpips_or_none(images, clean)})
    return rows


def run_restorer(spec: str, sets: dict, alphas: list[float], codec: LatentCodec) -> dict:
    """Calibrate every configuration for restorer:task ``spec`` and sweep alpha on the test crops."""
    model, task = spec.split(":")
    op = TASKS[task]()
    restorer = restore.load(model)
    restored, restorer_seconds = restore_all(restorer, op, sets["degraded"], 0)
    start = time.perf_counter()
    DeepOT.from_restored(restorer, op, restored, sets["natural"], codec=codec)
    tuner_seconds = time.perf_counter() - start
    outputs, _ = restore_all(restorer, op, sets["clean"], TEST_SEED)
    clean_stats = raw_latent_stats(codec, sets["clean"])
    result = {"task": TASK_NAMES[task], "timing": {"restorer_seconds": round(restorer_seconds, 1),
                                                   "tuner_own_seconds": round(tuner_seconds, 1),
                                                   "calibrate_seconds": round(restorer_seconds + tuner_seconds, 1)},
              "configurations": {}}
    for name, (local_mean, residual, natural_set) in CONFIGURATIONS.items():
        natural = sets["natural"] if natural_set == "unpaired" else sets["degraded"]
        tuner = DeepOT.from_restored(restorer, op, restored, natural, local_mean=local_mean, residual=residual, codec=codec)
        result["configurations"][name] = sweep(tuner, outputs, sets["clean"], alphas, clean_stats)
        print(spec, name, [(r["alpha"], r["psnr"], r["latent_w2"]) for r in result["configurations"][name]], flush=True)
    return result


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = list(report["restorers"])
    cols = 2
    rows = (len(specs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.2 * rows), dpi=110, squeeze=False)
    styles = ["-o", "--s", ":^", "-.d"]
    for ax, spec in zip(axes.flat, specs):
        result = report["restorers"][spec]
        for style, (name, sweep_rows) in zip(styles, result["configurations"].items()):
            ax.plot([r["latent_w2"] for r in sweep_rows], [r["psnr"] for r in sweep_rows], style, label=name, markersize=4)
            if name == "default":
                for r in sweep_rows:
                    ax.annotate(f"{r['alpha']:g}", (r["latent_w2"], r["psnr"]), textcoords="offset points",
                                xytext=(4, 3), fontsize=7)
        ax.set_title(f"{spec.split(':')[0]}, {result['task']}", fontsize=10)
        ax.set_xlabel("latent W2 to the clean crops (lower: closer to nature)", fontsize=8)
        ax.set_ylabel("PSNR (dB)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(specs):]:
        ax.axis("off")
    fig.suptitle(f"Deep OT on CBSD68 {CROP}px crops: PSNR against latent W2, labels are alpha", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def w2_ratio(rows: list[dict]) -> float:
    """Latent W2 at alpha 1 over W2 at alpha 0 (NaN when either was not swept)."""
    by_alpha = {r["alpha"]: r["latent_w2"] for r in rows}
    return by_alpha[1.0] / by_alpha[0.0] if 1.0 in by_alpha and 0.0 in by_alpha else float("nan")


def markdown(report: dict, command: str) -> str:
    alphas = [r["alpha"] for r in next(iter(next(iter(report["restorers"].values()))["configurations"].values()))]
    lines = ["# Deep OT: perception/distortion on CBSD68 crops", "",
             f"Machine {report['machine']}, {report['threads']} thread(s), {report['date']}, commit {report['commit']}. "
             f"Command: `{command}`", "", " ".join(__doc__.split("\n\n")[2].split()), "",
             f"Calibration images (degraded): {', '.join(report['calibration']['degraded'])}.  ",
             f"Calibration images (natural): {', '.join(report['calibration']['natural'])}.  ",
             f"Test images: {', '.join(report['test_images'])}.", "",
             "Each cell: PSNR (dB) / latent W2 (1 x 1 patches, D = 96). Last column: W2 at alpha 1 over W2 at alpha 0 "
             "(the bar: at most 0.5).", "",
             "| restorer | task | configuration | " + " | ".join(f"alpha {a:g}" for a in alphas) + " | W2(1) / W2(0) |",
             "|---|---|---|" + "---|" * (len(alphas) + 1)]
    for spec, result in report["restorers"].items():
        for name, rows in result["configurations"].items():
            ratio = w2_ratio(rows)
            cells = " | ".join(f"{r['psnr']:.2f} / {r['latent_w2']:.1f}" for r in rows)
            lines.append(f"| {spec.split(':')[0]} | {result['task']} | {name} | {cells} | {ratio:.2f} |")
    count = len(report["calibration"]["degraded"])
    lines += ["", f"Calibration time, {count} restored + {count} natural images of {CROP} x {CROP}, one thread, wall clock "
              "on a shared 2-core machine (other jobs running): DeepOT.calibrate = the restorer on the 16 degraded images + the "
              "tuner's own work (encode 32 images, float64 statistics, the map).", "",
              "| restorer | task | restorer (s) | tuner's own work (s) | DeepOT.calibrate (s) |", "|---|---|---|---|---|"]
    for spec, result in report["restorers"].items():
        t = result["timing"]
        lines.append(f"| {spec.split(':')[0]} | {result['task']} | {t['restorer_seconds']:.1f} | {t['tuner_own_seconds']:.1f} | "
                     f"{t['calibrate_seconds']:.1f} |")
    if report.get("lpips_note"):
        lines += ["", f"LPIPS: {report['lpips_note']}"]
    return "\n".join(lines) + "\n"


def write(report: dict, out: Path, command: str) -> None:
    """Everything measured so far: JSON, Markdown and the plot (rewritten after every restorer)."""
    try:
        lpips_distance(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))
        report["lpips_note"] = ""
    except MetricUnavailable as e:
        report["lpips_note"] = f"not measured here ({e})"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report, command))
    plot(report, out.with_suffix(".png"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibration", required=True, help="folder the calibration images come from (BSDS500 val)")
    ap.add_argument("--exclude", required=True, help="folder whose image stems are never calibrated on (CBSD68)")
    ap.add_argument("--test", required=True, help="the evaluation set (CBSD68)")
    ap.add_argument("--limit", type=int, default=12, help="test images")
    ap.add_argument("--calibration-images", type=int, default=16)
    ap.add_argument("--restorers", nargs="+", default=["lidia:denoise", "rddm:denoise", "rddm:sr", "bicubic:sr"],
                    help="MODEL:TASK, task denoise (sigma 25) or sr (x4)")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0, 0.25, 0.5, 0.7, 1.0, 1.25])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.calibration)
    degraded_names, natural_names = calibration_sets(folder, Path(args.exclude), args.calibration_images)
    test_paths = list_images(args.test)[: args.limit]
    sets = {"degraded": [read_centre_crop(folder / n, CROP) for n in degraded_names],
            "natural": [read_centre_crop(folder / n, CROP) for n in natural_names],
            "clean": [read_centre_crop(p, CROP) for p in test_paths]}
    report = {"machine": cpu_model(), "threads": args.threads, "date": f"{datetime.now(timezone.utc):%Y-%m-%d}",
              "commit": git_commit(), "crop": CROP, "calibration": {"degraded": degraded_names, "natural": natural_names},
              "test_images": [p.name for p in test_paths], "restorers": {}}
    codec = LatentCodec()
    command = " ".join(["python", "benchmarks/studies/perception_distortion.py", *sys.argv[1:]])
    for spec in args.restorers:
        report["restorers"][spec] = run_restorer(spec, sets, args.alphas, codec)
        write(report, Path(args.out), command)


if __name__ == "__main__":
    main()
