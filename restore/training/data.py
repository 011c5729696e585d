"""Training data and weight averaging shared by every training script."""
from __future__ import annotations

import argparse
import copy
import json
import math
import random
from pathlib import Path

import torch

from restore.io import list_images, read_image

# The 68 CBSD68 / BSD68 test scenes: no shipped model trains on them.
CBSD68_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "CBSD68"


def load_training_images(folders: list[Path], channels: int, exclude: set[str]) -> list[torch.Tensor]:
    """Read every image of ``folders`` (skipping ids in ``exclude``) as C x H x W in [0, 1]."""
    images = []
    for folder in folders:
        for path in list_images(folder):
            if path.stem in exclude:
                continue
            x = read_image(path).pixels[0]
            if channels == 1 and x.shape[0] == 3:
                x = (x * x.new_tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
            if x.shape[0] != channels:
                continue
            images.append(x)
    if not images:
        raise SystemExit(f"no {channels}-channel training images in {folders}")
    return images


def random_batch(images: list[torch.Tensor], batch: int, size: int, rng: random.Random) -> torch.Tensor:
    """``batch`` random crops with random flips and transposes (the dihedral group)."""
    crops = []
    for _ in range(batch):
        img = images[rng.randrange(len(images))]
        _, h, w = img.shape
        i, j = rng.randrange(h - size + 1), rng.randrange(w - size + 1)
        c = img[:, i : i + size, j : j + size]
        if rng.random() < 0.5:
            c = c.flip(-1)
        if rng.random() < 0.5:
            c = c.flip(-2)
        if rng.random() < 0.5:
            c = c.transpose(-1, -2)
        crops.append(c)
    return torch.stack(crops)


class WeightAverage:
    """Exponential moving average of a model's parameters (buffers copied as they are).

    Short, small-batch CPU runs end noisy; the average of the last few hundred
    steps denoises better than the last step's weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        # One multi-tensor kernel instead of one small lerp per parameter.
        torch._foreach_lerp_(list(self.model.parameters()), list(model.parameters()), 1 - self.decay)
        for avg, cur in zip(self.model.buffers(), model.buffers()):
            avg.copy_(cur)


def cbsd68_ids() -> set[str]:
    """File stems of the 68 test scenes (never trained on), when the data is here."""
    return {p.stem for p in list_images(CBSD68_DIR)} if CBSD68_DIR.exists() else set()


def training_images(folders: list[str | Path], channels: int, min_side: int) -> list[torch.Tensor]:
    """The training images of ``folders`` at least ``min_side`` a side, CBSD68's test scenes left out."""
    images = load_training_images([Path(d) for d in folders], channels, cbsd68_ids())
    return [im for im in images if min(im.shape[1:]) >= min_side]


def start_run(threads: int, seed: int) -> random.Random:
    """Thread count and seeds of a training run; returns its crop-sampling generator."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return random.Random(seed)


def set_cosine_lr(opt: torch.optim.Optimizer, elapsed: float, budget: float, lr: float, lr_min: float = 0.0,
                  warmup: float = 1.0) -> float:
    """Cosine from ``lr`` to ``lr_min`` over a wall-clock ``budget``, so a run of any length ends fully decayed,
    scaled by ``warmup`` (the linear warm-up's fraction, 1 once it is over)."""
    value = warmup * (lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * min(elapsed / budget, 1.0))))
    for group in opt.param_groups:
        group["lr"] = value
    return value


def descend(loss: torch.Tensor, model: torch.nn.Module, opt: torch.optim.Optimizer, average: WeightAverage,
            clip: float = 1.0) -> None:
    """One optimiser step on ``loss`` with gradient-norm clipping, then the weight average's update."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    average.update(model)


class LossLog:
    """The smoothed training loss, printed and kept every ``every`` steps (a run's .log.json)."""

    def __init__(self, every: int = 200):
        self.every, self.smoothed, self.rows = every, None, []

    def update(self, step: int, elapsed: float, lr: float, loss: float) -> None:
        self.smoothed = loss if self.smoothed is None else 0.99 * self.smoothed + 0.01 * loss
        if step % self.every == 0:
            print(f"step {step} t={elapsed / 60:.1f}min lr={lr:.2e} loss~{self.smoothed:.4f}", flush=True)
            self.rows.append({"step": step, "minutes": round(elapsed / 60, 2), "loss": round(self.smoothed, 5)})

    def save(self, stem: Path) -> None:
        stem.with_suffix(".log.json").write_text(json.dumps(self.rows))


def add_run_options(ap: argparse.ArgumentParser) -> None:
    """The options every diffusion training run takes (data, output, budget, optimiser, device)."""
    ap.add_argument("--data", nargs="+", required=True, help="training image folders")
    ap.add_argument("--out", required=True, help="output weights path without extension")
    ap.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--lr-min", type=float, default=1e-5)
    ap.add_argument("--warmup", type=int, default=200, help="steps of linear learning-rate warm-up")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--init", default=None, help="weights to start from (.safetensors)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
