"""Campaign job for VBLE-xz's variance decoder (cae-a0483-var), on the shipped cae-a0483 frozen."""
from __future__ import annotations

import torch
from torch import nn

from restore.nets.cae import CaeConfig, CompressiveAutoencoder
from restore.nets.variance_decoder import VarianceDecoder, gaussian_nll
from restore.restorers.vble import frozen_net
from restore.training.cae import bf16_available, prepare_for_training
from restore.training.campaign.cae_job import AutoencoderFamilyJob
from restore.training.campaign.job import ShippedBudget
from restore.training.campaign.validation import validation_crops
from restore.weights import sha256

VAL_SIDE = 256


class VarianceJob(AutoencoderFamilyJob):
    """sigma_theta(z) by the Gaussian NLL of each crop around D(z + U), the autoencoder frozen.

    It always trains against the autoencoder shipped now: after a release of
    ``cae`` it adapts to the new one, and its validation (and the shipped
    decoder's) is taken against that one, so both are compared on equal terms.
    """

    def __init__(self, name: str, cae: str, priority: float, budget: ShippedBudget, **kwargs) -> None:
        super().__init__(**kwargs)
        self.name, self.cae_name, self.priority, self.budget = name, cae, priority, budget
        self._cae: CompressiveAutoencoder | None = None
        self._val: list[torch.Tensor] | None = None

    def new_model(self) -> nn.Module:
        return VarianceDecoder(CaeConfig(**self.shipped_config()["config"]))

    def shipped_sha(self) -> str:
        # A score of the shipped decoder is only valid for the autoencoder it was taken with.
        cae = sha256((self.weights_dir / self.cae_name).with_suffix(".safetensors"))
        return f"{super().shipped_sha()}+{cae}"

    def autoencoder(self) -> CompressiveAutoencoder:
        if self._cae is None:
            # The shipped autoencoder with its own config, verified against the manifest.
            cae = frozen_net(CompressiveAutoencoder, self.cae_name, self.weights_dir, torch.device("cpu"))
            self._cae = prepare_for_training(cae)
        return self._cae

    def loss(self, model: nn.Module, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = batch.contiguous(memory_format=torch.channels_last)
        cae = self.autoencoder()
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16_available(x.device)):
            with torch.no_grad():
                z = cae.g_a(x).float()
                z = z + torch.empty_like(z).uniform_(-0.5, 0.5)
                mean = cae.decode(z)
            std = model(z)
        return gaussian_nll(x, mean.float(), std.float())

    @torch.inference_mode()
    def validate(self, model: nn.Module) -> dict:
        """Mean Gaussian NLL on 32 central 256 x 256 crops, the latent noise drawn with a fixed seed."""
        if self._val is None:
            self._val = validation_crops(self.data_root, 3, VAL_SIDE)
        cae = self.autoencoder()
        gen = torch.Generator().manual_seed(0)
        nll, coverage = [], []
        for x in self._val:
            z = cae.g_a(x)
            z = z + torch.rand(z.shape, generator=gen) - 0.5
            mean, std = cae.decode(z), model.eval()(z)
            nll.append(float(gaussian_nll(x, mean, std)))
            coverage.append(float(((x - mean).abs() <= 2 * std).float().mean()))
        n = len(self._val)
        return {"loss": round(sum(nll) / n, 5), "coverage_2std": round(sum(coverage) / n, 4), "images": n}
