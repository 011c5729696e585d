"""The variance decoder of VBLE-xz: per-pixel std of an image given its latent z.

Shaped like the autoencoder's synthesis transform; its output goes through a
sigmoid plus 2e-4, so that sigma_theta(z) lies in (2e-4, 1 + 2e-4). Trained
with the autoencoder frozen, by the Gaussian negative log-likelihood of the
image around the autoencoder's reconstruction.
"""
from __future__ import annotations

import torch
from torch import nn

from restore.nets.cae import CaeConfig, synthesis_transform

STD_FLOOR = 2e-4


class VarianceDecoder(nn.Module):
    """sigma_theta(z): B x M x h x w latents -> B x C x 16h x 16w standard deviations."""

    def __init__(self, cfg: CaeConfig = CaeConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.body = synthesis_transform(cfg)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.sigmoid(self.body(z)) + STD_FLOOR


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Mean per-element negative log-likelihood of x under N(mean, std^2), constant dropped."""
    return (0.5 * ((x - mean) / std) ** 2 + torch.log(std)).mean()
