"""Train the compressive autoencoder at one rate trade-off; the code behind weights/cae-*.

    python -m restore.training.cae --alpha 0.0483 --data ../shared/data/BSDS500/train ../shared/data/BSDS500/test \
        --minutes 45 --out weights/cae-a0483

Loss: alpha * 255^2 * MSE + bits per pixel (the VBLE authors' form), uniform
noise in place of rounding, Adam, gradient-norm clip 20, random crops with
flips. A smaller alpha gives a lower rate and a stronger prior for VBLE. The
learning rate follows a cosine over a wall-clock budget, as for LIDIA, so a
CPU run of any length ends fully decayed. CBSD68's 68 scenes are skipped.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from restore.nets.cae import MULTIPLE, CaeConfig, CompressiveAutoencoder
from restore.training.data import WeightAverage, random_batch, set_cosine_lr, start_run, training_images
from restore.weights import load_state, save_model


def rd_loss(out: dict[str, torch.Tensor], x: torch.Tensor, alpha: float) -> tuple[torch.Tensor, float, float]:
    """(loss, mse, bpp) of a batch."""
    mse = ((out["x_hat"].float() - x) ** 2).mean()
    bpp = out["bpp"].mean()
    return alpha * 255**2 * mse + bpp, mse.item(), bpp.item()


def bf16_available(device: torch.device) -> bool:
    """Whether bf16 autocast speeds training up here: a GPU, or a CPU with AVX512-BF16 (or AMX)."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def prepare_for_training(model: torch.nn.Module) -> torch.nn.Module:
    """Channels-last weights: with channels-last batches oneDNN runs every convolution
    without reordering, and GDN's channel product is one contiguous GEMM."""
    return model.to(memory_format=torch.channels_last)


def training_loss(model: CompressiveAutoencoder, x: torch.Tensor, alpha: float,
                  fast: bool = True) -> tuple[torch.Tensor, float, float]:
    """(loss, mse, bpp) of one training batch ``x`` (B x 3 x H x W in [0, 1]).

    ``fast``: channels-last batch and bf16 autocast for the four transforms
    where the hardware has bf16 (fp32 master weights; the entropy models stay
    fp32, see ``CompressiveAutoencoder.bits``). About 2x fewer seconds per
    sample on an AVX512-BF16 CPU for the same loss curve
    (``benchmarks/results/training_speed.md``). ``fast=False`` is the fp32 step.
    """
    if not fast:
        return rd_loss(model(x), x, alpha)
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16_available(x.device)):
        out = model(x)
    return rd_loss(out, x, alpha)


def train(args: argparse.Namespace) -> None:
    if args.crop % MULTIPLE:
        raise SystemExit(f"--crop must be a multiple of {MULTIPLE} (the hyper-latent is at 1/{MULTIPLE} scale)")
    rng = start_run(args.threads, args.seed)
    cfg = CaeConfig(n=args.n, m=args.m)
    images = training_images(args.data, 3, args.crop)
    print(f"{len(images)} training images, {cfg}, alpha {args.alpha}", flush=True)
    model = CompressiveAutoencoder(cfg)
    if args.init:
        model.load_state_dict(load_state(Path(args.init)))
    model = prepare_for_training(model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    average = WeightAverage(model, args.ema)
    start, budget = time.time(), args.minutes * 60
    step, log, ema = 0, [], None
    while (elapsed := time.time() - start) < budget:
        lr = set_cosine_lr(opt, elapsed, budget, args.lr, args.lr_min)
        x = random_batch(images, args.batch, args.crop, rng)
        loss, mse, bpp = training_loss(model, x, args.alpha)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 20.0)
        opt.step()
        average.update(model)
        step += 1
        psnr = -10 * math.log10(max(mse, 1e-10))
        ema = (psnr, bpp) if ema is None else (0.98 * ema[0] + 0.02 * psnr, 0.98 * ema[1] + 0.02 * bpp)
        if step % 50 == 0:
            print(f"step {step} t={elapsed / 60:.1f}min lr={lr:.2e} psnr~{ema[0]:.2f} bpp~{ema[1]:.3f}", flush=True)
            log.append({"step": step, "minutes": round(elapsed / 60, 2), "psnr": round(ema[0], 3), "bpp": round(ema[1], 4)})
        if step % 500 == 0:
            save_model(average.model, cfg.to_dict(), Path(args.out), meta=_meta(args, step, elapsed))
    save_model(average.model, cfg.to_dict(), Path(args.out), meta=_meta(args, step, time.time() - start))
    Path(args.out).with_suffix(".log.json").write_text(json.dumps(log))
    print(f"done: {step} steps in {(time.time() - start) / 60:.1f} min -> {args.out}", flush=True)


def _meta(args: argparse.Namespace, step: int, seconds: float) -> dict:
    return {"alpha": args.alpha, "steps": step, "train_seconds": round(seconds), "batch": args.batch, "crop": args.crop,
            "lr": args.lr, "ema": args.ema, "init": args.init or "", "threads": args.threads,
            "data": ",".join(Path(d).name for d in args.data)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alpha", type=float, required=True, help="rate trade-off: loss = alpha 255^2 MSE + bpp")
    ap.add_argument("--data", nargs="+", required=True, help="training image folders")
    ap.add_argument("--out", required=True, help="output weights path without extension")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--m", type=int, default=96)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--lr-min", type=float, default=1e-5)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--init", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    train(ap.parse_args())


if __name__ == "__main__":
    main()
