"""Campaign jobs for the LIDIA denoisers (gray at sigma 15/25/50, colour at 25)."""
from __future__ import annotations

import torch
from torch import nn

from restore.nets.lidia import Lidia, LidiaConfig
from restore.training import lidia as lidia_training
from restore.training.campaign.job import Job, Recipe, ShippedBudget
from restore.training.campaign.validation import validation_crops

VAL_SIDE = 128  # 32 crops of 128 x 128: about half a minute for one validation on one core


class LidiaJob(Job):
    """LIDIA-S at one noise level: loss log10 MSE on 56 x 56 crops with fresh Gaussian noise.

    Validation: PSNR on central 128 x 128 crops of the 32 validation images
    (gray: their luminance) with noise seeded per image; the loss is -PSNR,
    and a release needs 0.02 dB over the shipped weights.
    """

    card = "lidia"

    def __init__(self, color: str, sigma: int, priority: float, budget: ShippedBudget, **kwargs) -> None:
        super().__init__(**kwargs)
        self.color, self.sigma = color, sigma
        self.name = f"lidia-{color}-s{sigma}"
        self.priority, self.budget = priority, budget
        self.channels = 1 if color == "gray" else 3
        self.data = ("Train400",) if color == "gray" else ("BSDS500/train", "BSDS500/test")
        # Far from converged (some 600 steps behind it): a rate near the middle of its first cosine.
        self.recipe = Recipe(lr=5e-4, ema=0.995, batch=4, crop=56, warmup=20, clip=1e9, release_margin=0.02)
        self._val: list[torch.Tensor] | None = None

    def new_model(self) -> nn.Module:
        return Lidia(LidiaConfig.from_dict(self.shipped_config()["config"]))

    def loss(self, model: nn.Module, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return lidia_training.training_loss(model, batch, self.sigma / 255.0, generator)

    @torch.inference_mode()
    def validate(self, model: nn.Module) -> dict:
        if self._val is None:
            self._val = validation_crops(self.data_root, self.channels, VAL_SIDE)
        model = model.eval()
        psnrs = []
        for i, x in enumerate(self._val):
            gen = torch.Generator().manual_seed(1000 * self.sigma + i)
            noisy = x + self.sigma / 255.0 * torch.randn(x.shape, generator=gen)
            y, _ = lidia_training.to_model_units(noisy, x)
            mean = (noisy * 2 - 1).mean(dim=(2, 3), keepdim=True)
            x_hat = ((model(y, chunk=4096) + mean + 1) / 2).clamp(0, 1)
            psnrs.append(-10 * torch.log10(((x_hat - x) ** 2).mean()).item())
        psnr = sum(psnrs) / len(psnrs)
        return {"loss": round(-psnr, 4), "psnr": round(psnr, 4), "images": len(psnrs)}
