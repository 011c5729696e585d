"""What a residual-diffusion net sees besides I_t: the degraded image and its noise level.

Shared by training and the restorer so that both build the net's input the same way.
Images are in [-1, 1] on the net's side. For super-resolution the degraded image
is the low-resolution one upsampled by bicubic interpolation (I_in has the output's
size). The noise level enters as one constant channel, sigma * NOISE_MAP_SCALE
(sigma in [0, 1] units), so one denoising model covers a range of sigmas.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

NOISE_MAP_SCALE = 10.0
# I_t, I_in, noise map.
INPUT_CHANNELS = 7
OUTPUT_CHANNELS = 6


def degraded_start(y: torch.Tensor, scale: int) -> torch.Tensor:
    """I_in in [-1, 1] from a measurement y in [0, 1] (bicubic upsampling by ``scale`` for SR)."""
    if scale > 1:
        y = F.interpolate(y, scale_factor=float(scale), mode="bicubic", align_corners=False)
    return y * 2 - 1


def noise_map(like: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """B x 1 x H x W constant channels holding each image's noise level."""
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device).reshape(-1, 1, 1, 1)
    return (sigma * NOISE_MAP_SCALE).expand(like.shape[0], 1, *like.shape[-2:])


def net_input(x_t: torch.Tensor, x_in: torch.Tensor, sigma_map: torch.Tensor) -> torch.Tensor:
    return torch.cat([x_t, x_in, sigma_map.to(x_t.dtype)], dim=1)
