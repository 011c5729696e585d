"""A campaign job small enough for tests: a 2-layer conv denoiser on random images (no shared data).

Importable by a subprocess (``python -c "import campaign_tiny; campaign_tiny.main(...)"``) so that a
test can SIGKILL a real campaign run and resume it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from restore.training.campaign.job import Job, Recipe, ShippedBudget
from restore.training.campaign.runner import RunSettings, run_campaign
from restore.weights import save_model, update_manifest


class TinyNet(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return x - self.body(x)


class TinySampler:
    """Random 16 x 16 smooth images; ``generator`` is what the campaign saves and restores."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, batch: int) -> torch.Tensor:
        x = torch.rand(batch, 1, 4, 4, generator=self.generator)
        return torch.nn.functional.interpolate(x, size=16, mode="bilinear", align_corners=False)


class TinyJob(Job):
    card = "tiny"

    def __init__(self, name: str = "tiny", priority: float = 1.0, store_moments: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.name, self.priority, self.store_moments = name, priority, store_moments
        self.budget = ShippedBudget(100, 60.0, "made by the test")
        self.recipe = Recipe(lr=1e-2, ema=0.9, batch=8, crop=16, warmup=5, clip=10.0)

    def new_model(self) -> nn.Module:
        return TinyNet()

    def sampler(self, device, generator_seed: int, cache: dict) -> TinySampler:
        return TinySampler(generator_seed)

    def loss(self, model, batch, generator):
        noisy = batch + 0.1 * torch.randn(batch.shape, generator=generator)
        return ((model(noisy) - batch) ** 2).mean()

    @torch.no_grad()
    def validate(self, model) -> dict:
        gen = torch.Generator().manual_seed(0)
        x = TinySampler(123)(16)
        noisy = x + 0.1 * torch.randn(x.shape, generator=gen)
        mse = float(((model(noisy) - x) ** 2).mean())
        return {"loss": round(mse, 7), "images": 16}


def ship(weights_dir: Path, name: str = "tiny", seed: int = 0) -> None:
    """Write untrained 'shipped' weights and a manifest, as a release would."""
    torch.manual_seed(seed)
    save_model(TinyNet(), {"width": 8}, weights_dir / name, meta={"steps": 100})
    update_manifest(weights_dir)


def main(weights_dir: str, models_dir: str, minutes: float, save_seconds: float) -> None:
    jobs = [TinyJob(weights_dir=Path(weights_dir))]
    settings = RunSettings(minutes=minutes, slice_minutes=minutes, save_seconds=save_seconds,
                           validate_seconds=1e9, models_dir=Path(models_dir))
    run_campaign(jobs, settings, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
