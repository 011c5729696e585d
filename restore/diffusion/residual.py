"""The residual diffusion (RDDM) schedule and its deterministic few-step sampler.

Forward process (Liu et al. 2024): I_t = I_0 + abar_t I_res + bbar_t eps with the
residual I_res = I_in - I_0 (degraded minus clean). The restoration schedule has
alpha_i proportional to T + 1 - i and beta_i^2 proportional to i, with
sum(alpha) = 1 (so I_T = I_in + bbar_T eps) and sum(beta^2) = ``sum_scale``.
RDDM's schedule is not one of diffusers' schedulers, hence this module.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

T = 1000
SUM_SCALE = 0.01


@dataclass(frozen=True)
class ResidualSchedule:
    """abar[t], bbar[t] for t = 0 .. T (index 0 is the clean end: abar = bbar = 0)."""

    abar: torch.Tensor
    bbar: torch.Tensor

    @classmethod
    def make(cls, steps: int = T, sum_scale: float = SUM_SCALE) -> "ResidualSchedule":
        i = torch.arange(1, steps + 1, dtype=torch.float64)
        alpha = (steps + 1 - i) / (steps + 1 - i).sum()
        beta2 = i / i.sum() * sum_scale
        zero = torch.zeros(1, dtype=torch.float64)
        abar = torch.cat([zero, alpha.cumsum(0)]).clamp(0, 1)
        bbar = torch.cat([zero, beta2.cumsum(0)]).clamp(0, 1).sqrt()
        return cls(abar.float(), bbar.float())

    @property
    def steps(self) -> int:
        return len(self.abar) - 1

    def at(self, t: torch.Tensor, ndim: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        """abar_t, bbar_t for integer times ``t`` (B,), shaped to broadcast over B x C x H x W."""
        shape = (-1,) + (1,) * (ndim - 1)
        return self.abar.to(t.device)[t].view(shape), self.bbar.to(t.device)[t].view(shape)

    def noisy(self, x0: torch.Tensor, x_in: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """I_t from the clean image, the degraded one and the noise."""
        a, b = self.at(t, x0.ndim)
        return x0 + a * (x_in - x0) + b * eps

    def start(self, x_in: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """I_T = I_in + bbar_T z, where every sampler begins."""
        return x_in + float(self.bbar[-1]) * z

    def sampling_times(self, steps: int) -> list[int]:
        """``steps`` + 1 descending times from T to 0, evenly spaced."""
        if not 1 <= steps <= self.steps:
            raise ValueError(f"steps must be between 1 and {self.steps}, got {steps}")
        return torch.linspace(self.steps, 0, steps + 1).round().long().tolist()

    def step(self, x_t: torch.Tensor, res: torch.Tensor, eps: torch.Tensor, t: int, t_next: int) -> torch.Tensor:
        """One deterministic (eta = 0) step from t to t_next < t with the predicted residual and noise."""
        da = float(self.abar[t] - self.abar[t_next])
        db = float(self.bbar[t] - self.bbar[t_next])
        return x_t - da * res - db * eps

    def clean(self, x_t: torch.Tensor, res: torch.Tensor, eps: torch.Tensor, t: int) -> torch.Tensor:
        """The clean-image estimate x0_hat = I_t - abar_t res - bbar_t eps."""
        return x_t - float(self.abar[t]) * res - float(self.bbar[t]) * eps

    def noise_from_residual(self, x_t: torch.Tensor, x_in: torch.Tensor, res: torch.Tensor, t: int) -> torch.Tensor:
        """eps implied by a residual: (I_t - I_in - (abar_t - 1) I_res) / bbar_t (t > 0)."""
        return (x_t - x_in - (float(self.abar[t]) - 1) * res) / float(self.bbar[t])


def predict(model, schedule: ResidualSchedule, x_t: torch.Tensor, x_in: torch.Tensor, sigma_map: torch.Tensor,
            t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(residual, noise) at time t: both from the net, or the noise derived from the residual,
    as the model's ``objective`` says."""
    from restore.diffusion.conditioning import net_input

    cond = torch.full((x_t.shape[0],), float(t), device=x_t.device)
    res, eps = model(net_input(x_t, x_in, sigma_map), cond).float().chunk(2, dim=1)
    if model.config.extra.get("objective", "both") == "residual":
        eps = schedule.noise_from_residual(x_t, x_in, res, t)
    return res, eps


def sample(model, schedule: ResidualSchedule, x_in: torch.Tensor, sigma_map: torch.Tensor, z: torch.Tensor,
           steps: int, on_step=None) -> torch.Tensor:
    """The deterministic (eta = 0) sampler: I_T = I_in + bbar_T z, ``steps`` net evaluations, the last x0_hat.

    Clean estimates are clipped to [-1, 1] as in the reference sampler.
    """
    x = schedule.start(x_in, z)
    times = schedule.sampling_times(steps)
    x0 = x
    for t, t_next in zip(times[:-1], times[1:]):
        res, eps = predict(model, schedule, x, x_in, sigma_map, t)
        x0 = schedule.clean(x, res, eps, t).clamp(-1, 1)
        if t_next > 0:
            x = schedule.step(x, res, eps, t, t_next)
        if on_step is not None:
            on_step()
    return x0
