"""Distil a residual-diffusion SR teacher into a one-step super-resolver (SinSR); the code behind weights/onestep-sr*.

    python -m restore.training.distill_sr --teacher runs/rddm-sr4 --data ../shared/data/BSDS500/train \
        ../shared/data/BSDS500/test --minutes 3 --device cuda --out runs/onestep-sr4

The teacher runs as a deterministic ``--teacher-steps``-step sampler (eta = 0): a
fixed map from the start state x_T = I_in + bbar_T z to an image. The student, a
copy of the teacher, is evaluated once at t = T. Losses (SinSR, all MSE):
  distillation   || S_T(x_T) - teacher(x_T) ||^2
  inverse        || I_in + bbar_T S_0(teacher(x_T)) - x_T ||^2   the same net at t = 0, through its
                 noise head, learns the map back from the teacher's output to the start state
  ground truth   || S_T(stopgrad(I_in + bbar_T S_0(x_gt))) - x_gt ||^2
The student's image is x0 = I_in - residual (the teacher's residual objective).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from restore.diffusion.conditioning import degraded_start, net_input, noise_map
from restore.diffusion.residual import ResidualSchedule, sample
from restore.nets.unet import UNet, UNetConfig
from restore.operators.downsample import Downsample
from restore.training.data import WeightAverage, descend, set_cosine_lr, training_images
from restore.training.patches import PatchSampler
from restore.weights import load_state, save_model


def load_teacher(stem: Path, device: torch.device) -> UNet:
    config = UNetConfig.from_dict(json.loads(stem.with_suffix(".json").read_text())["config"])
    if config.extra.get("task") != "sr" or config.extra.get("objective") != "residual":
        raise SystemExit(f"{stem}: the teacher must be an SR model trained with the residual objective")
    model = UNet(config)
    model.load_state_dict(load_state(stem.with_suffix(".safetensors")))
    return model.to(device)


def student_image(model: UNet, x_t: torch.Tensor, x_in: torch.Tensor, zero_map: torch.Tensor, steps: int) -> torch.Tensor:
    res = model(net_input(x_t, x_in, zero_map), torch.full((x_t.shape[0],), float(steps), device=x_t.device))[:, :3]
    return x_in - res.float()


def start_state(model: UNet, x0: torch.Tensor, x_in: torch.Tensor, zero_map: torch.Tensor, bbar_T: float) -> torch.Tensor:
    """The inverse map: the net at t = 0 reads an image and gives the start state through its noise head."""
    z = model(net_input(x0, x_in, zero_map), torch.zeros(x0.shape[0], device=x0.device))[:, 3:]
    return x_in + bbar_T * z.float()


def train(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(args.seed)
    teacher = load_teacher(Path(args.teacher), device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    config: UNetConfig = teacher.config
    scale = int(config.extra["scale"])
    student = load_teacher(Path(args.teacher), device).train()
    schedule = ResidualSchedule.make(sum_scale=config.extra.get("sum_scale", 0.01))
    bbar_T = float(schedule.bbar[-1])
    sampler = PatchSampler(training_images(args.data, 3, args.crop), args.crop, device, seed=args.seed)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    average = WeightAverage(student, args.ema)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    start, budget = time.time(), args.minutes * 60
    step, log, ema_loss = 0, [], None
    while (elapsed := time.time() - start) < budget:
        set_cosine_lr(opt, elapsed, budget, args.lr, args.lr_min)
        clean = sampler(args.batch)
        x_in, x_gt = degraded_start(Downsample(scale, "bicubic").forward(clean), scale), clean * 2 - 1
        zero_map = noise_map(x_in, 0.0)
        z = torch.randn_like(x_in)
        x_T = schedule.start(x_in, z)
        with torch.no_grad(), autocast:
            target = sample(teacher, schedule, x_in, zero_map, z, args.teacher_steps)
        with autocast:
            distil = F.mse_loss(student_image(student, x_T, x_in, zero_map, schedule.steps), target.float())
            inverse = F.mse_loss(start_state(student, target, x_in, zero_map, bbar_T), x_T)
            with torch.no_grad():
                x_T_gt = start_state(student, x_gt, x_in, zero_map, bbar_T)
            truth = F.mse_loss(student_image(student, x_T_gt, x_in, zero_map, schedule.steps), x_gt)
        loss = distil + args.inverse_weight * inverse + args.truth_weight * truth
        descend(loss, student, opt, average)
        step += 1
        ema_loss = loss.item() if ema_loss is None else 0.99 * ema_loss + 0.01 * loss.item()
        if step % 100 == 0:
            print(f"step {step} t={elapsed / 60:.1f}min loss~{ema_loss:.5f} distil={distil.item():.5f} "
                  f"inverse={inverse.item():.5f} truth={truth.item():.5f}", flush=True)
            log.append({"step": step, "minutes": round(elapsed / 60, 2), "loss": round(ema_loss, 6)})
    out_config = UNetConfig.from_dict({**config.to_dict(), "extra": {**config.extra, "one_step": True}})
    meta = {"teacher": Path(args.teacher).name, "teacher_steps": args.teacher_steps, "steps": step,
            "train_seconds": round(time.time() - start), "batch": args.batch, "crop": args.crop, "lr": args.lr,
            "inverse_weight": args.inverse_weight, "truth_weight": args.truth_weight, "device": args.device}
    save_model(average.model, out_config.to_dict(), Path(args.out), meta=meta)
    Path(args.out).with_suffix(".log.json").write_text(json.dumps(log))
    print(f"done: {step} steps in {(time.time() - start) / 60:.1f} min -> {args.out}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", required=True, help="teacher weights stem (an rddm SR run)")
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--teacher-steps", type=int, default=15)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--lr-min", type=float, default=5e-6)
    ap.add_argument("--ema", type=float, default=0.99)
    ap.add_argument("--inverse-weight", type=float, default=1.0)
    ap.add_argument("--truth-weight", type=float, default=1.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    train(ap.parse_args())


if __name__ == "__main__":
    main()
