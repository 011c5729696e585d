"""The README's pictures: one before/after montage per task, and VBLE's posterior std against its error.

    python benchmarks/studies/figures.py                  # writes benchmarks/results/figures/ (15 s on 2 idle CPU cores)

Needs matplotlib (``pip install -e '.[bench]'``).

Protocol: the clean image is the 128 x 128 crop (rows 30-157, columns 170-297:
the face) of scikit-image's ``astronaut``, RGB in [0, 1]. Degradations are the toolkit's operators, built
as the CLI builds them (``restore.operators.make_operator``, sigma in 0-255 / 255),
with noise and mask drawn from ``torch.Generator().manual_seed(0)``; every
restorer runs at its default settings with the same seeded generator, on the
CPU with 2 threads.

- ``denoise.png``: Gaussian noise sigma 25/255; noisy | lidia | clean.
- ``sr_x4.png``: bicubic Downsample x4, no noise; low-res input | bicubic | onestep-sr | clean.
- ``deblur.png``: Gaussian blur std 2 px, noise 2.55/255; blurry | vble (MMSE) | clean.
- ``inpaint.png``: 50% of the pixels missing at random, no noise; masked | vble | clean
  (vble, the faster at default settings on this crop: 5.5 s against reddiff's 8.6 s; reddiff scores
  higher, 29.45 dB against 27.71 dB).
- ``vble_std_vs_error.png``: the deblurring case: VBLE's MMSE, posterior std, |MMSE - clean|.

Each panel's PSNR is against the clean crop over all three channels and the
whole image (SR: no Y channel, no border crop, unlike ``restore bench``),
output clipped to [0, 1], not quantised. Being one crop, these PSNRs illustrate;
the benchmark tables measure.

``figures.md`` beside the PNGs holds the table, the run time, date and commit.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

import restore
from restore.bench.plots import montage, std_vs_error
from restore.bench.provenance import cpu_model, git_commit, now_utc
from restore.commands.files import example_path
from restore.io import atomic_write, read_image
from restore.metrics import psnr
from restore.operators import Operator, make_operator, random_mask
from restore.restorers import Restoration

REPO = Path(__file__).resolve().parents[2]

SEED = 0
THREADS = 2
TOP, LEFT, CROP = 30, 170, 128
OUT = REPO / "benchmarks" / "results" / "figures"


def generator() -> torch.Generator:
    return torch.Generator().manual_seed(SEED)


def clean_crop() -> torch.Tensor:
    x = read_image(example_path("astronaut")).pixels
    return x[..., TOP : TOP + CROP, LEFT : LEFT + CROP].contiguous()


def operators() -> dict[str, Operator]:
    """The four tasks' operators, as the CLI builds them (sigma 0-255 in the CLI, / 255 here)."""
    return {
        "denoise": make_operator("denoise", sigma=25.0 / 255),
        "sr_x4": make_operator("sr", scale=4),
        "deblur": make_operator("deblur", sigma=2.55 / 255, kernel="gaussian:2"),
        "inpaint": make_operator("inpaint", mask=random_mask(CROP, CROP, 0.5, generator())),
    }


# task -> (title, label of the degraded input, restorers shown)
TASKS = {
    "denoise": ("Denoising, Gaussian noise sigma 25/255", "noisy", ["lidia"]),
    "sr_x4": ("Super-resolution x4 (bicubic downsampling)", "bicubic", ["onestep-sr"]),
    "deblur": ("Deblurring, Gaussian blur std 2 px, noise 2.55/255", "blurry", ["vble"]),
    "inpaint": ("Inpainting, 50% of the pixels missing", "masked", ["vble"]),
}


def score(image: torch.Tensor, clean: torch.Tensor) -> float:
    return float(psnr(image.clamp(0, 1), clean))


def timed_restore(name: str, y: torch.Tensor, op: Operator) -> tuple[Restoration, float]:
    restorer = restore.load(name)
    start = time.perf_counter()
    result = restorer.restore(y, op, generator=generator())
    return result, time.perf_counter() - start


def task_figure(task: str, op: Operator, clean: torch.Tensor, out: Path, say: Callable[[str], None]) -> list[dict]:
    """Write ``<task>.png`` and return its rows (panel, PSNR, seconds); keep VBLE's result for the std figure."""
    title, degraded_label, names = TASKS[task]
    y = op.measure(clean, generator())
    if task == "sr_x4":
        # The bicubic panel is the toolkit's baseline restorer; the low-res input is shown magnified.
        first, seconds = timed_restore("bicubic", y, op)
        rows = [{"task": task, "panel": "bicubic", "psnr": score(first.image, clean), "seconds": seconds, "image": first.image}]
        panels = [(f"low-res input ({y.shape[-2]} x {y.shape[-1]})", y)]
    else:
        rows = [{"task": task, "panel": degraded_label, "psnr": score(y, clean), "seconds": 0.0, "image": y}]
        panels = []
    for name in names:
        result, seconds = timed_restore(name, y, op)
        label = f"{name} (MMSE)" if result.std is not None else name
        rows.append({"task": task, "panel": label, "psnr": score(result.image, clean), "seconds": seconds,
                     "image": result.image, "std": result.std})
        say(f"{task}: {name} {rows[-1]['psnr']:.2f} dB in {seconds:.1f} s")
    panels += [(f"{r['panel']}\n{r['psnr']:.2f} dB", r["image"]) for r in rows] + [("clean", clean)]
    montage(panels, out / f"{task}.png", title=title)
    return rows


def std_figure(rows: list[dict], clean: torch.Tensor, out: Path) -> Path:
    vble = next(r for r in rows if r["task"] == "deblur" and r.get("std") is not None)
    mmse = vble["image"].clamp(0, 1)
    title = f"VBLE, deblurring (Gaussian std 2 px, noise 2.55/255): MMSE {vble['psnr']:.2f} dB"
    return std_vs_error(mmse, vble["std"], mmse - clean, out / "vble_std_vs_error.png", title=title)


def table(rows: list[dict]) -> list[str]:
    lines = ["| task | panel | PSNR (dB) | seconds |", "|---|---|---:|---:|"]
    lines += [f"| {r['task']} | {r['panel']} | {r['psnr']:.2f} | {r['seconds']:.1f} |" for r in rows]
    return lines


def protocol(paragraph: int) -> str:
    """A paragraph of this docstring on one line, so that the table carries its protocol."""
    return " ".join(__doc__.split("\n\n")[paragraph].split())


def markdown(rows: list[dict], total: float) -> str:
    head = ["# Figures: before/after on one astronaut crop", "",
            f"Command: `python benchmarks/studies/figures.py`. Date {now_utc()}, commit {git_commit()}, "
            f"{cpu_model()}, {THREADS} torch threads; total {total:.0f} s.", "",
            protocol(3), "", protocol(5), ""]
    return "\n".join(head + table(rows)) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default benchmarks/results/figures)")
    args = ap.parse_args(argv)
    torch.set_num_threads(THREADS)
    start = time.perf_counter()
    clean = clean_crop()
    rows: list[dict] = []
    for task, op in operators().items():
        rows += task_figure(task, op, clean, args.out, lambda s: print(s, flush=True))
    std_figure(rows, clean, args.out)
    total = time.perf_counter() - start
    text = markdown(rows, total)
    atomic_write(args.out / "figures.md", lambda fh: fh.write(text.encode()), what="figure table")
    print("\n".join(table(rows)))
    print(f"total {total:.0f} s; figures in {args.out}")


if __name__ == "__main__":
    main()
