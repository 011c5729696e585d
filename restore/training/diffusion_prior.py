"""Train the diffusion prior: a noise-conditional U-Net by denoising score matching; the code behind weights/diffusion-prior.

    python -m restore.training.diffusion_prior --data ../shared/data/BSDS500/train ../shared/data/BSDS500/test \
        --faces ../shared/data/CelebAHQ_samples --minutes 8 --device cuda --out runs/diffusion-prior

Objective: the DDPM "simple" loss, E || eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t) - eps ||^2,
over the whole 1000-step VP schedule (diffusers' linear betas), images in [-1, 1].
Half of each batch draws t uniformly; the other half draws the noise level
sigma_t log-uniformly over [1e-2, 2] ([-1, 1] units, about 1.3/255 to 255/255),
because restoration (RED-Diff's late steps, the plain denoiser) lives at low noise.
Face images (CelebA-HQ, resized to 256 x 256 like the FFHQ test images) are
repeated so that they make about an eighth of the patches. CBSD68's 68 scenes are
never read; the FFHQ samples are held out for the benchmark.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from restore.diffusion import vp
from restore.nets.unet import UNet, UNetConfig, count_params
from restore.training.data import LossLog, WeightAverage, add_run_options, descend, set_cosine_lr, training_images
from restore.training.patches import PatchSampler
from restore.weights import load_state, save_model

PRIOR_CONFIG = UNetConfig(in_channels=3, out_channels=3, base=32, mults=(1, 2, 4, 4), blocks=2)
FACE_SIDE = 256


def face_images(folder: str | None, copies: int) -> list[torch.Tensor]:
    """The face images resized to FACE_SIDE, each repeated ``copies`` times (few images, many scenes)."""
    if not folder:
        return []
    faces = training_images([folder], 3, FACE_SIDE)
    small = [F.interpolate(f[None], size=(FACE_SIDE, FACE_SIDE), mode="area")[0] for f in faces]
    return small * copies


def sample_times(batch: int, abar: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Float timesteps: half uniform over [0, T-1], half at log-uniform noise levels (see module doc)."""
    half = batch // 2
    uniform = torch.rand(batch - half, generator=generator) * (len(abar) - 1)
    log_sigma = math.log(1e-2) + torch.rand(half, generator=generator) * (math.log(2.0) - math.log(1e-2))
    low = vp.timestep_for_sigma(log_sigma.exp(), abar)
    return torch.cat([uniform, low])


def interpolated_abar(abar: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """abar at fractional times (linear interpolation of the table)."""
    lo = t.floor().long().clamp(0, len(abar) - 2)
    frac = (t - lo).clamp(0, 1)
    return abar[lo] * (1 - frac) + abar[lo + 1] * frac


def train(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick its fastest kernels once
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    images = training_images(args.data, 3, args.crop)
    images += face_images(args.faces, max(1, len(images) // (7 * 8)))
    sampler = PatchSampler(images, args.crop, device, seed=args.seed)
    abar = vp.alphas_cumprod("cpu")
    model = UNet(PRIOR_CONFIG).to(device)
    if args.init:
        model.load_state_dict(load_state(Path(args.init)))
    model = model.to(memory_format=torch.channels_last)
    print(f"{len(images)} training images, {count_params(model) / 1e6:.2f}M parameters, device {device}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    average = WeightAverage(model, args.ema)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    start, budget = time.time(), args.minutes * 60
    step, log = 0, LossLog()
    while (elapsed := time.time() - start) < budget:
        lr = set_cosine_lr(opt, elapsed, budget, args.lr, args.lr_min, warmup=min(1.0, (step + 1) / args.warmup))
        x0 = sampler(args.batch) * 2 - 1
        t = sample_times(args.batch, abar, generator)
        a = interpolated_abar(abar, t).to(device).view(-1, 1, 1, 1)
        eps = torch.randn_like(x0)
        x_t = (a.sqrt() * x0 + (1 - a).sqrt() * eps).contiguous(memory_format=torch.channels_last)
        with autocast:
            pred = model(x_t, t.to(device))
        loss = F.mse_loss(pred.float(), eps)
        descend(loss, model, opt, average)
        step += 1
        log.update(step, elapsed, lr, loss.item())
        if step % 2000 == 0:
            save_model(average.model, PRIOR_CONFIG.to_dict(), Path(args.out), meta=_meta(args, step, elapsed))
    save_model(average.model, PRIOR_CONFIG.to_dict(), Path(args.out), meta=_meta(args, step, time.time() - start))
    log.save(Path(args.out))
    print(f"done: {step} steps in {(time.time() - start) / 60:.1f} min -> {args.out}", flush=True)


def _meta(args: argparse.Namespace, step: int, seconds: float) -> dict:
    return {"objective": "eps-prediction, VP linear 1e-4..0.02, T=1000", "steps": step, "train_seconds": round(seconds),
            "batch": args.batch, "crop": args.crop, "lr": args.lr, "ema": args.ema, "init": args.init or "",
            "device": args.device, "data": ",".join(Path(d).name for d in [*args.data, *([args.faces] if args.faces else [])])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", default=None, help="folder of face images (resized to 256 x 256)")
    add_run_options(ap)
    train(ap.parse_args())


if __name__ == "__main__":
    main()
