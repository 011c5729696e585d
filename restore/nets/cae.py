"""A mean-scale hyperprior compressive autoencoder (Minnen et al. 2018 without context), sized for a CPU.

x (B x 3 x H x W in [0, 1], sides multiples of 64)
  -> g_a -> z (M x H/16 x W/16) -> h_a -> h (N x H/64 x W/64)
  h -> h_s -> (mean, scale) of p(z | h);  z -> g_s -> x_hat.

The rate is -log2 p(z | h) - log2 p(h), with ``gaussian_likelihood`` and a
``FactorizedDensity``; training replaces rounding by additive uniform noise.
VBLE uses the same densities on its continuous latents (its posterior is a
box of width a around zbar, the training noise when a = 1).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from restore.nets.entropy import FactorizedDensity, gaussian_likelihood

MULTIPLE = 64  # image sides: four stride-2 layers to z, two more to h


@dataclass(frozen=True)
class CaeConfig:
    """Channel widths: N inside the transforms and for h, M for z."""

    channels: int = 3
    n: int = 64
    m: int = 96

    def to_dict(self) -> dict:
        return asdict(self)


class GDN(nn.Module):
    """Generalized divisive normalization (Balle et al. 2016), or its inverse.

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2); the inverse multiplies.
    beta and gamma are kept non-negative by squaring their parameters.
    """

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter(torch.sqrt(0.1 * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        beta = self.beta_root**2 + 1e-6
        gamma = self.gamma_root**2
        # The 1x1 convolution as a product over the channel axis of a B x H x W x C
        # view: for channels-last activations (training) the view is contiguous, so
        # every step is one GEMM and a few same-layout elementwise passes; a 1x1
        # conv2d instead takes a slow unblocked path and its elementwise ops mix
        # layouts (about 2x the cost of the whole GDN). Same function.
        t = x.permute(0, 2, 3, 1)
        if not t.is_contiguous():  # channels-first input: one copy, then every pass below is contiguous
            t = t.contiguous()
        norm = F.linear(t * t, gamma, beta)
        out = t * torch.sqrt(norm) if self.inverse else t * torch.rsqrt(norm)
        return out.permute(0, 3, 1, 2)


def downsampling_conv(cin: int, cout: int, k: int = 5) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=2, padding=k // 2)


def upsampling_conv(cin: int, cout: int, k: int = 5) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)


def synthesis_transform(cfg: CaeConfig) -> nn.Sequential:
    """g_s: four stride-2 transposed convolutions with inverse GDN between them (M -> C channels, x16)."""
    n, m, c = cfg.n, cfg.m, cfg.channels
    return nn.Sequential(
        upsampling_conv(m, n), GDN(n, inverse=True), upsampling_conv(n, n), GDN(n, inverse=True),
        upsampling_conv(n, n), GDN(n, inverse=True), upsampling_conv(n, c),
    )


class CompressiveAutoencoder(nn.Module):
    """Analysis/synthesis transforms, hyper-transforms and the two entropy models."""

    def __init__(self, cfg: CaeConfig = CaeConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        c, n, m = cfg.channels, cfg.n, cfg.m
        self.g_a = nn.Sequential(
            downsampling_conv(c, n), GDN(n), downsampling_conv(n, n), GDN(n), downsampling_conv(n, n), GDN(n),
            downsampling_conv(n, m),
        )
        self.g_s = synthesis_transform(cfg)
        self.h_a = nn.Sequential(
            nn.Conv2d(m, n, 3, padding=1), nn.LeakyReLU(inplace=True), downsampling_conv(n, n), nn.LeakyReLU(inplace=True),
            downsampling_conv(n, n),
        )
        self.h_s = nn.Sequential(
            upsampling_conv(n, m), nn.LeakyReLU(inplace=True), upsampling_conv(m, m * 3 // 2), nn.LeakyReLU(inplace=True),
            nn.Conv2d(m * 3 // 2, 2 * m, 3, padding=1),
        )
        self.density = FactorizedDensity(n)

    # ---- pieces VBLE uses -------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous latents (z, h) of x (no rounding, no noise)."""
        z = self.g_a(x)
        return z, self.h_a(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x_hat = g_s(z)."""
        return self.g_s(z)

    def z_params(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, scale) of p(z | h)."""
        mean, scale = self.h_s(h).chunk(2, dim=1)
        return mean, scale

    def bits(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(-log2 p(z | h), -log2 p(h)) summed per image (B values each), at the given latent values.

        The entropy models always run in float32, also under a bf16 autocast
        (training): bf16 would put the predicted mean 1/16 off near 10 and lose
        the likelihoods' tails; at 1/16 and 1/64 scale they cost little.
        """
        with torch.autocast(z.device.type, enabled=False):
            z, h = z.float(), h.float()
            mean, scale = self.z_params(h)
            bits_z = -torch.log2(gaussian_likelihood(z, mean, scale)).sum(dim=(1, 2, 3))
            bits_h = -torch.log2(self.density.likelihood(h)).sum(dim=(1, 2, 3))
        return bits_z, bits_h

    # ---- training and evaluation --------------------------------------------------
    def forward(self, x: torch.Tensor, quantize: bool = False) -> dict[str, torch.Tensor]:
        """x_hat and bits per pixel: uniform noise for training, rounding when ``quantize``."""
        z, h = self.encode(x)
        # Latents in float32 before rounding or noise (bf16 would round z to 1/8 near 16).
        z, h = z.float(), h.float()
        if quantize:
            h_q = torch.round(h)
            mean, _ = self.z_params(h_q)
            z_q = torch.round(z - mean) + mean
        else:
            h_q = h + torch.empty_like(h).uniform_(-0.5, 0.5)
            z_q = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        bits_z, bits_h = self.bits(z_q, h_q)
        pixels = x.shape[-2] * x.shape[-1]
        return {"x_hat": self.decode(z_q), "bpp": (bits_z + bits_h) / pixels}


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom and right of x to multiples of ``multiple``; returns the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        # Reflection needs pad < size; replicate covers images smaller than the padding.
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, [0, pw, 0, ph], mode=mode)
    return x, (h, w)
