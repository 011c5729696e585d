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
# The noise levels (sigma in [0, 1] units) each task's net is trained on; SR nets see no noise.
TRAINED_SIGMAS = {"denoise": (0.0, 55 / 255), "deblur": (0.0, 10 / 255), "sr": (0.0, 0.0)}
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


def gray_for_colour_net(y: torch.Tensor, sigma: torch.Tensor | float, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A gray measurement as the colour net's input: (three channels scaled by k, the noise level to tell the net).

    A gray image copied into three channels has all its noise in the luminance
    direction (1, 1, 1)/sqrt(3), with std sqrt(3) sigma there, where a colour
    net expects sigma in every direction: told sigma, it leaves most of the
    noise (Set12, sigma 25: 24.86 dB). Told sqrt(3) sigma, its luminance noise
    is the one it expects (29.56 dB). Where sqrt(3) sigma exceeds the trained
    range, the image is scaled by k < 1 first, so that sqrt(3) k sigma is the
    range's top (sigma 50: 26.17 dB instead of 19.35). Undo with
    ``colour_to_gray(x, k)``. Figures: benchmarks/results/rddm_gray.md.
    """
    top = TRAINED_SIGMAS[task][1]
    sigma = torch.as_tensor(sigma, dtype=y.dtype, device=y.device).reshape(-1, 1, 1, 1)
    luminance_sigma = sigma * 3**0.5
    # A net trained without noise (SR) has no range to scale into: scaling would only darken the image.
    too_strong = (luminance_sigma > top) & (top > 0)
    k = torch.where(too_strong, top / luminance_sigma.clamp(min=1e-12), torch.ones_like(sigma))
    return (y * k).expand(-1, 3, -1, -1), k


def colour_to_gray(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The gray image back from the colour net's output on ``gray_for_colour_net``'s input (x in [0, 1])."""
    return x.mean(dim=1, keepdim=True) / k
