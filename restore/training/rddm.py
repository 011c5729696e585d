"""Train a residual-diffusion (RDDM) model for one task; the code behind weights/rddm-*.

    python -m restore.training.rddm --task sr --scale 4 --data ../shared/data/BSDS500/train ../shared/data/BSDS500/test \
        --minutes 8 --device cuda --out runs/rddm-sr4
    python -m restore.training.rddm --task denoise ...     # sigma 0-55/255 per image, the level as an input channel
    python -m restore.training.rddm --task deblur ...      # Gaussian blur std 0.5-3.5 px, noise 0-10/255

The degradations are the toolkit's own operators (bicubic Downsample, circular
Blur), so a model meets at test time exactly what it was trained on. Objective
(Liu et al.): I_t = I_0 + abar_t I_res + bbar_t eps with the restoration schedule
(sum_scale 0.01), a U-Net on [I_t, I_in, noise map] predicting the residual and
the noise. ``--objective residual`` (the default) puts the L1 loss on the
residual alone and the sampler derives the noise from it, the variant RDDM's
automatic objective selection picks for restoration: with a noise term the
(small, unpredictable) noise dominates the loss of a shared net and starves the
residual. ``--objective both`` is L1 on each, as in the paper's two-net setting.
AdamW, cosine learning rate over a wall-clock budget, EMA of the weights, bf16
autocast on a GPU. CBSD68's 68 scenes are never read.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from restore.diffusion.conditioning import (
    INPUT_CHANNELS,
    OUTPUT_CHANNELS,
    TRAINED_SIGMAS,
    degraded_start,
    net_input,
    noise_map,
)
from restore.diffusion.residual import SUM_SCALE, ResidualSchedule
from restore.nets.unet import UNet, UNetConfig, count_params
from restore.operators.blur import Blur
from restore.operators.downsample import Downsample
from restore.operators.kernels import gaussian_kernel
from restore.training.data import LossLog, WeightAverage, add_run_options, descend, set_cosine_lr, training_images
from restore.training.patches import PatchSampler
from restore.weights import load_state, save_model

TASKS = ("sr", "denoise", "deblur")
DENOISE_SIGMAS = TRAINED_SIGMAS["denoise"]
DEBLUR_STDS = (0.5, 3.5)
DEBLUR_SIGMAS = TRAINED_SIGMAS["deblur"]


OBJECTIVES = ("residual", "both")


def rddm_config(task: str, scale: int, objective: str = "residual") -> UNetConfig:
    return UNetConfig(in_channels=INPUT_CHANNELS, out_channels=OUTPUT_CHANNELS, base=32, mults=(1, 2, 3, 3), blocks=1,
                      extra={"task": task, "scale": scale, "sum_scale": SUM_SCALE, "objective": objective})


def degrade(x: torch.Tensor, task: str, scale: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(measurement y in [0, 1], per-image noise sigma) for a batch of clean crops x in [0, 1]."""
    b = x.shape[0]
    if task == "sr":
        return Downsample(scale, "bicubic").forward(x), torch.zeros(b)
    lo, hi = DENOISE_SIGMAS if task == "denoise" else DEBLUR_SIGMAS
    sigma = lo + (hi - lo) * torch.rand(b, generator=generator)
    if task == "deblur":
        std = DEBLUR_STDS[0] + (DEBLUR_STDS[1] - DEBLUR_STDS[0]) * float(torch.rand(1, generator=generator))
        x = Blur(gaussian_kernel(std)).forward(x)
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    return x + sigma.to(x.device).view(-1, 1, 1, 1) * noise, sigma


def train(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick its fastest kernels once
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    scale = args.scale if args.task == "sr" else 1
    config = rddm_config(args.task, scale, args.objective)
    schedule = ResidualSchedule.make()
    sampler = PatchSampler(training_images(args.data, 3, args.crop), args.crop, device, seed=args.seed)
    model = UNet(config).to(device)
    if args.init:
        model.load_state_dict(load_state(Path(args.init)))
    model = model.to(memory_format=torch.channels_last)
    print(f"task {args.task} x{scale}: {count_params(model) / 1e6:.2f}M parameters, device {device}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    average = WeightAverage(model, args.ema)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    start, budget = time.time(), args.minutes * 60
    step, log = 0, LossLog()
    while (elapsed := time.time() - start) < budget:
        lr = set_cosine_lr(opt, elapsed, budget, args.lr, args.lr_min, warmup=min(1.0, (step + 1) / args.warmup))
        clean = sampler(args.batch)
        y, sigma = degrade(clean, args.task, scale, generator)
        x_in, x0 = degraded_start(y, scale), clean * 2 - 1
        t = torch.randint(1, schedule.steps + 1, (args.batch,), generator=generator).to(device)
        eps = torch.randn_like(x0)
        x_t = schedule.noisy(x0, x_in, t, eps)
        inp = net_input(x_t, x_in, noise_map(x_in, sigma)).contiguous(memory_format=torch.channels_last)
        with autocast:
            out = model(inp, t.float())
        res_hat, eps_hat = out.float().chunk(2, dim=1)
        loss = F.l1_loss(res_hat, x_in - x0)
        if args.objective == "both":
            loss = loss + F.l1_loss(eps_hat, eps)
        descend(loss, model, opt, average)
        step += 1
        log.update(step, elapsed, lr, loss.item())
        if step % 2000 == 0:
            save_model(average.model, config.to_dict(), Path(args.out), meta=_meta(args, step, elapsed))
    save_model(average.model, config.to_dict(), Path(args.out), meta=_meta(args, step, time.time() - start))
    log.save(Path(args.out))
    print(f"done: {step} steps in {(time.time() - start) / 60:.1f} min -> {args.out}", flush=True)


def _meta(args: argparse.Namespace, step: int, seconds: float) -> dict:
    return {"task": args.task, "scale": args.scale if args.task == "sr" else 1, "objective": args.objective, "steps": step,
            "train_seconds": round(seconds), "batch": args.batch,
            "crop": args.crop, "lr": args.lr, "ema": args.ema, "init": args.init or "", "device": args.device,
            "data": ",".join(Path(d).name for d in args.data)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=TASKS, required=True)
    ap.add_argument("--scale", type=int, default=4, help="SR factor (2 or 4)")
    ap.add_argument("--objective", choices=OBJECTIVES, default="residual")
    add_run_options(ap)
    train(ap.parse_args())


if __name__ == "__main__":
    main()
