"""Campaign jobs for the compressive autoencoders (cae-a0483, cae-a0067)."""
from __future__ import annotations

import torch
from torch import nn

from restore.nets.cae import CaeConfig, CompressiveAutoencoder
from restore.training.cae import prepare_for_training, training_loss
from restore.training.campaign.job import Job, Recipe, ShippedBudget
from restore.training.campaign.validation import validation_crops

VAL_SIDE = 256  # the card's CBSD68 protocol: central 256 x 256 crops


class AutoencoderFamilyJob(Job):
    """What the autoencoders and the variance decoder share: the recipe, channels-last training, and a
    compact committed state (fp16 weights; neither Adam's moments nor the weight average, which stays in
    the ignored ``.local/`` file). A resume continues from the weights with fresh moments after a 100-step
    warm-up and restarts the average from them (cost: ``benchmarks/results/campaign_resume*.md``); the
    three states are 3.5 + 3.5 + 0.75 MB instead of about 60 MB, which keeps a session's state commit
    under 15 MB.
    """

    card = "vble"
    store_moments = False
    store_fp16 = True
    commit_average = False
    release_fp16 = True
    recipe = Recipe(lr=2e-4, ema=0.999, batch=4, crop=128, warmup=100, clip=20.0)

    def prepare(self, model: nn.Module) -> nn.Module:
        return prepare_for_training(model)


class CaeJob(AutoencoderFamilyJob):
    """A compressive autoencoder at rate trade-off ``alpha``: loss alpha 255^2 MSE + bpp."""

    def __init__(self, name: str, alpha: float, priority: float, budget: ShippedBudget, **kwargs) -> None:
        super().__init__(**kwargs)
        self.name, self.alpha, self.priority, self.budget = name, alpha, priority, budget
        self._val: list[torch.Tensor] | None = None

    def new_model(self) -> nn.Module:
        return CompressiveAutoencoder(CaeConfig(**self.shipped_config()["config"]))

    def loss(self, model: nn.Module, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return training_loss(model, batch, self.alpha)[0]

    @torch.inference_mode()
    def validate(self, model: nn.Module) -> dict:
        """Rate-distortion loss with real rounding (as a codec would) on 32 central 256 x 256 crops."""
        if self._val is None:
            self._val = validation_crops(self.data_root, 3, VAL_SIDE)
        model = model.eval()
        mse, bpp, psnr = [], [], []
        for x in self._val:
            out = model(x.contiguous(), quantize=True)
            err = float(((out["x_hat"].float().clamp(0, 1) - x) ** 2).mean())
            mse.append(err)
            bpp.append(float(out["bpp"].mean()))
            psnr.append(-10 * torch.log10(torch.tensor(max(err, 1e-12))).item())
        n = len(self._val)
        loss = sum(self.alpha * 255**2 * m + b for m, b in zip(mse, bpp)) / n
        return {"loss": round(loss, 5), "psnr": round(sum(psnr) / n, 3), "bpp": round(sum(bpp) / n, 4), "images": n}
