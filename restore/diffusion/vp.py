"""The variance-preserving (DDPM) schedule of the diffusion prior, taken from diffusers.

x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, with the linear beta schedule from
1e-4 to 0.02 over T = 1000 steps (the one RED-Diff and the ADM/DPS priors use).
Images are in [-1, 1] on the prior's side.
"""
from __future__ import annotations

import functools

import torch

T = 1000
BETA_START, BETA_END = 1e-4, 0.02


@functools.lru_cache(maxsize=1)
def _alphas_cumprod() -> torch.Tensor:
    from diffusers import DDPMScheduler  # imported here: importing diffusers costs about a second

    scheduler = DDPMScheduler(num_train_timesteps=T, beta_start=BETA_START, beta_end=BETA_END, beta_schedule="linear")
    return scheduler.alphas_cumprod.to(torch.float64)


def alphas_cumprod(device: str | torch.device = "cpu") -> torch.Tensor:
    """abar_t for t = 0 .. T-1 (float32 on ``device``)."""
    return _alphas_cumprod().to(device, torch.float32)


def descending_timesteps(steps: int) -> list[int]:
    """RED-Diff's deterministic, descending timesteps: T - T/N, ..., 0 (diffusers' "leading" spacing)."""
    from diffusers import DDIMScheduler

    if not 1 <= steps <= T:
        raise ValueError(f"steps must be between 1 and {T}, got {steps}")
    scheduler = DDIMScheduler(num_train_timesteps=T, beta_start=BETA_START, beta_end=BETA_END,
                              beta_schedule="linear", timestep_spacing="leading")
    scheduler.set_timesteps(steps)
    return [int(t) for t in scheduler.timesteps]


def noise_level(abar: torch.Tensor) -> torch.Tensor:
    """sigma_t = sqrt((1 - abar_t) / abar_t): the Gaussian noise std of x_t / sqrt(abar_t) around x_0."""
    return ((1 - abar) / abar).sqrt()


def timestep_for_sigma(sigma: float | torch.Tensor, abar: torch.Tensor) -> float | torch.Tensor:
    """The fractional timestep whose noise level sigma_t is ``sigma`` ([-1, 1] units), by interpolation.

    Lets the prior serve as a plain Gaussian denoiser at any sigma (the net takes a
    continuous time). Takes a float or a tensor of them; clamped to the schedule's range.
    """
    levels = noise_level(abar.double().cpu())
    s = torch.as_tensor(sigma, dtype=torch.float64).clamp(float(levels[0]), float(levels[-1]))
    i = torch.searchsorted(levels, s).clamp(1, len(levels) - 1)
    lo, hi = levels[i - 1], levels[i]
    t = i - 1 + (s - lo) / (hi - lo)
    return float(t) if t.ndim == 0 else t.float()
