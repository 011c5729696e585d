"""Train a LIDIA denoiser for one noise level; the code behind weights/lidia-*.

One command per shipped model, e.g.::

    python -m restore.training.lidia --color gray --sigma 25 --data ../shared/data/Train400 \
        --minutes 40 --out weights/lidia-gray-s25

The learning rate follows a cosine over a wall-clock budget (``--minutes``)
rather than a step count, so that a CPU run of a given length always ends
with a fully decayed rate. ``--init`` warm-starts from other weights (how the
sigma 15 and 50 models were fine-tuned from the sigma 25 one).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from restore.nets.lidia import Lidia, LidiaConfig
from restore.training.data import WeightAverage, random_batch, set_cosine_lr, start_run, training_images
from restore.weights import load_state, save_model


def to_model_units(noisy: torch.Tensor, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[0, 1] -> [-1, 1] with the noisy image's per-channel mean removed from both."""
    y, x = noisy * 2 - 1, clean * 2 - 1
    mean = y.mean(dim=(2, 3), keepdim=True)
    return y - mean, x - mean


def log_mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log10 of the MSE, the paper's loss: scale-free across noise levels."""
    return torch.log10(((pred - target) ** 2).mean())


def training_loss(
    model: Lidia,
    clean: torch.Tensor,
    sigma: float,
    generator: torch.Generator | None = None,
    fast: bool = True,
) -> torch.Tensor:
    """The log10-MSE loss of one training step, graph attached (the caller does backward and step).

    Args:
        model: the network, in train mode.
        clean: B x C x H x W crops in [0, 1].
        sigma: noise std in [0, 1] units; the noise is drawn from ``generator``
            (the global generator if None, as ``torch.randn_like`` did).
        fast: run the network's products under bf16 autocast (fp32 weights,
            gradients and loss; the patch search stays fp32 so the same
            neighbours are chosen). ``fast=False`` is the plain fp32 step.
    """
    if clean.dim() != 4:
        raise ValueError(f"clean must be B x C x H x W, got shape {tuple(clean.shape)}")
    if clean.shape[1] != model.cfg.channels:
        raise ValueError(f"clean has {clean.shape[1]} channels, the model takes {model.cfg.channels}")
    if not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be positive (0-1 units), got {sigma}")
    noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device)
    y, x = to_model_units(clean + sigma * noise, clean)
    if not fast:
        return log_mse_loss(model(y), x)
    with torch.autocast(clean.device.type, dtype=torch.bfloat16):
        pred = model(y)
    return log_mse_loss(pred.float(), x)


def train(args: argparse.Namespace) -> None:
    rng = start_run(args.threads, args.seed)
    cfg = LidiaConfig.gray() if args.color == "gray" else LidiaConfig.color()
    images = training_images(args.data, cfg.channels, args.crop)
    print(f"{len(images)} training images, {cfg}", flush=True)
    model = Lidia(cfg)
    if args.init:
        model.load_state_dict(load_state(Path(args.init)))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    average = WeightAverage(model, args.ema) if args.ema > 0 else None
    sigma = args.sigma / 255.0
    start = time.time()
    budget = args.minutes * 60
    step, ema = 0, None
    log = []
    while (elapsed := time.time() - start) < budget:
        lr = set_cosine_lr(opt, elapsed, budget, args.lr, args.lr_min)
        clean = random_batch(images, args.batch, args.crop, rng)
        loss = training_loss(model, clean, sigma, fast=not args.fp32)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if average is not None:
            average.update(model)
        step += 1
        # PSNR in [0, 1] units from log10 MSE in [-1, 1] units: MSE01 = MSE/4.
        psnr = -10 * (loss.item() - math.log10(4))
        ema = psnr if ema is None else 0.98 * ema + 0.02 * psnr
        if step % 25 == 0:
            print(f"step {step} t={elapsed / 60:.1f}min lr={lr:.2e} train_psnr~{ema:.2f}", flush=True)
            log.append({"step": step, "minutes": round(elapsed / 60, 2), "train_psnr_ema": round(ema, 3)})
        final = average.model if average is not None else model
        if step % 100 == 0:
            save_model(final, cfg.to_dict(), Path(args.out), meta=_meta(args, step, elapsed))
    final = average.model if average is not None else model
    save_model(final, cfg.to_dict(), Path(args.out), meta=_meta(args, step, time.time() - start))
    Path(args.out).with_suffix(".log.json").write_text(json.dumps(log))
    print(f"done: {step} steps in {(time.time() - start) / 60:.1f} min -> {args.out}", flush=True)


def _meta(args: argparse.Namespace, step: int, seconds: float) -> dict:
    return {
        "sigma": args.sigma,
        "color": args.color,
        "steps": step,
        "train_seconds": round(seconds),
        "batch": args.batch,
        "crop": args.crop,
        "lr": args.lr,
        "init": args.init or "",
        "ema": args.ema,
        "data": ",".join(Path(d).name for d in args.data),
        "threads": args.threads,
        "precision": "fp32" if args.fp32 else "bf16-autocast",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--color", choices=["gray", "color"], default="gray")
    ap.add_argument("--sigma", type=float, required=True, help="noise std in 0-255 units")
    ap.add_argument("--data", nargs="+", required=True, help="training image folders")
    ap.add_argument("--out", required=True, help="output weights path without extension")
    ap.add_argument("--minutes", type=float, default=30.0, help="wall-clock training budget")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=56)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-min", type=float, default=5e-5)
    ap.add_argument("--init", default=None, help="weights to start from (.safetensors)")
    ap.add_argument("--ema", type=float, default=0.0, help="weight-average decay (0: off)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fp32", action="store_true", help="plain fp32 steps (default: bf16 autocast products)")
    train(ap.parse_args())


if __name__ == "__main__":
    main()
