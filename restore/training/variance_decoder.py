"""Train VBLE-xz's variance decoder on a frozen compressive autoencoder; the code behind weights/*-var.

    python -m restore.training.variance_decoder --cae weights/cae-a0483 \
        --data ../shared/data/BSDS500/train ../shared/data/BSDS500/test --minutes 15 --out runs/cae-a0483-var

The autoencoder's latent of each crop gets the training noise (U(-1/2, 1/2)),
as VBLE's posterior samples will; the decoder learns the per-pixel std of the
crop around the reconstruction by the Gaussian negative log-likelihood.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from restore.nets.cae import MULTIPLE, CaeConfig, CompressiveAutoencoder
from restore.nets.variance_decoder import VarianceDecoder, gaussian_nll
from restore.training.data import WeightAverage, random_batch, set_cosine_lr, start_run, training_images
from restore.weights import load_state, save_model


def train(args: argparse.Namespace) -> None:
    if args.crop % MULTIPLE:
        raise SystemExit(f"--crop must be a multiple of {MULTIPLE}")
    rng = start_run(args.threads, args.seed)
    cae_path = Path(args.cae)
    cfg = CaeConfig(**json.loads(cae_path.with_suffix(".json").read_text())["config"])
    cae = CompressiveAutoencoder(cfg)
    cae.load_state_dict(load_state(cae_path.with_suffix(".safetensors")))
    cae.eval().requires_grad_(False)
    images = training_images(args.data, 3, args.crop)
    model = VarianceDecoder(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    average = WeightAverage(model, args.ema)
    start, budget = time.time(), args.minutes * 60
    step, log, ema = 0, [], None
    while (elapsed := time.time() - start) < budget:
        set_cosine_lr(opt, elapsed, budget, args.lr)
        x = random_batch(images, args.batch, args.crop, rng)
        with torch.no_grad():
            z = cae.g_a(x)
            z = z + torch.empty_like(z).uniform_(-0.5, 0.5)
            mean = cae.decode(z)
        loss = gaussian_nll(x, mean, model(z))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 20.0)
        opt.step()
        average.update(model)
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 50 == 0:
            print(f"step {step} t={elapsed / 60:.1f}min nll~{ema:.4f}", flush=True)
            log.append({"step": step, "minutes": round(elapsed / 60, 2), "nll": round(ema, 5)})
    meta = {"cae": cae_path.name, "steps": step, "train_seconds": round(time.time() - start), "batch": args.batch,
            "crop": args.crop, "lr": args.lr}
    save_model(average.model, cfg.to_dict(), Path(args.out), meta=meta)
    Path(args.out).with_suffix(".log.json").write_text(json.dumps(log))
    print(f"done: {step} steps -> {args.out}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cae", required=True, help="autoencoder weights stem (without extension)")
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    train(ap.parse_args())


if __name__ == "__main__":
    main()
