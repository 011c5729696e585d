"""VBLE-xz (Biquard et al. 2024): VBLE plus an image-space Gaussian factor, for satellite images.

q(x | z) = N(D(z) / gamma, diag(b^2 sigma_theta(z)^2) / gamma^2), with sigma_theta
from a variance decoder trained on the frozen autoencoder and b a learnable
per-pixel factor, exp(clamp(theta, log 1e-4, log 3)), starting at 1. The loss
adds KL_x = 0.5 [sum(b^2 - 2 log b) - n] / HW to VBLE's latent KL. gamma in
(0, 1] is the training-free bitrate modulation: x_init is encoded as
gamma * x_init and decoded images are divided by gamma; a lower gamma is a
lower bitrate, a stronger prior.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from restore.errors import RestoreError
from restore.nets.cae import CompressiveAutoencoder
from restore.nets.variance_decoder import VarianceDecoder
from restore.noise_field import NoiseSource
from restore.operators.base import Operator
from restore.options import option
from restore.restorers.base import register
from restore.restorers.vble import Posterior, VbleOptions, VbleRestorer, VbleSettings, frozen_net
from restore.weights import shipped

LOG_B_MIN, LOG_B_MAX = math.log(1e-4), math.log(3.0)


def shipped_variance_decoders(folder: Path) -> dict[str, str]:
    """{autoencoder name: its variance decoder's weights name}."""
    return {card["cae"]: name for name, card in shipped("vble-xz", folder).items()}


@dataclass(frozen=True)
class VbleXzOptions(VbleOptions):
    gamma: float = option(1.0, "bitrate modulation: lower = stronger prior (the authors' satellite demo: 0.25)",
                          above=0, high=1)


@register("vble-xz")
class VbleXzRestorer(VbleRestorer):
    """VBLE with an image-space posterior factor and bitrate modulation.

    Options (``VbleXzOptions``): those of VBLE (lambda defaults to 1, iterations to
    200) and ``gamma``, the bitrate modulation in (0, 1] (default 1: none).
    """

    name: ClassVar[str] = "vble-xz"
    description: ClassVar[str] = "VBLE-xz: latent + image-space posterior, variance decoder, bitrate modulation (satellites)"
    half_precision = {  # benchmarks/studies/precision_safety.py measures them
        "bf16": "small loss: -0.04 dB deblur on a 96 px crop, 60 iterations "
                "(benchmarks/results/precision_safety.md)",
        "fp16": "unsafe: NaN or inf under fp16 autocast, redone in fp32 by the pipeline, so no gain "
                "(benchmarks/results/precision_safety.md)",
    }

    Options = VbleXzOptions

    def setup(self) -> None:
        super().setup()
        self.encode_gain = self.options.gamma
        self._variance: dict[str, VarianceDecoder] = {}

    def settings(self, operator: Operator) -> VbleSettings:
        """The autoencoder that has a variance decoder, lambda 1, 200 iterations (unless given)."""
        pairs = shipped_variance_decoders(self.weights_dir)
        if not pairs:
            raise RestoreError("no shipped variance decoder weights: vble-xz needs one (see models/vble/README.md)")
        weights = self.weights or next(iter(sorted(pairs)))
        if weights not in pairs:
            raise RestoreError(f"autoencoder '{weights}' has no variance decoder; these do: {', '.join(sorted(pairs))}")
        return VbleSettings(weights, self.lam or 1.0, self.iterations or 200)

    def to(self, device: str | torch.device) -> "VbleXzRestorer":
        """Run on ``device``."""
        if torch.device(device) != self.device:
            self._variance = {}
        super().to(device)
        return self

    def variance_decoder(self, cae_name: str) -> VarianceDecoder:
        """The frozen variance decoder paired with autoencoder ``cae_name``."""
        if cae_name not in self._variance:
            name = shipped_variance_decoders(self.weights_dir)[cae_name]
            self._variance[cae_name] = frozen_net(VarianceDecoder, name, self.weights_dir, self.device)
        return self._variance[cae_name]

    def _start(self, cae: CompressiveAutoencoder, y: torch.Tensor, operator: Operator, settings: VbleSettings) -> Posterior:
        post = super()._start(cae, y, operator, settings)
        h, w = post.size
        post.extra["log_b"] = torch.zeros(y.shape[0], 3, h, w, device=y.device, requires_grad=True)
        post.nets["variance"] = self.variance_decoder(settings.weights)
        return post

    def _image_draw(self, cae: CompressiveAutoencoder, z: torch.Tensor, post: Posterior, noise: NoiseSource,
                    repeat: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = post.size
        mean = cae.decode(z)[..., :h, :w] / self.encode_gain
        std = post.nets["variance"](z)[..., :h, :w] / self.encode_gain
        log_b = post.extra["log_b"].clamp(LOG_B_MIN, LOG_B_MAX)
        b = log_b.exp()
        draws = [noise.randn(post.extra["log_b"].shape, device=z.device) for _ in range(repeat)]
        eps = torch.stack(draws, dim=1).flatten(0, 1)
        x = mean + b.repeat_interleave(repeat, dim=0) * std * eps
        if post.gray:
            x = x.mean(dim=1, keepdim=True)
        kl_x = 0.5 * ((b**2 - 2 * log_b).sum() - b.numel()) / (h * w)
        return x, kl_x
