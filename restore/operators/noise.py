"""Noise models: what ``Operator.measure`` adds to the noiseless A x.

All values are in [0, 1] image units. Noise is drawn on the generator's device
(a CPU generator cannot drive a CUDA draw) and then moved to the image's device,
so that one seed gives the same measurement on every device.
"""
from __future__ import annotations

import math
from numbers import Real

import torch
from torch import nn

from restore.errors import RestoreError


def check_sigma(sigma: object, name: str = "sigma") -> float:
    """Return ``sigma`` as a float, or raise unless it is a finite number in [0, 1].

    Args:
        sigma: a noise standard deviation in [0, 1] image units.
        name: the argument name used in the error message.
    """
    if isinstance(sigma, torch.Tensor) and sigma.numel() == 1:
        sigma = sigma.item()
    if isinstance(sigma, bool) or not isinstance(sigma, Real):
        raise RestoreError(f"{name} must be a number in [0, 1], got {sigma!r}")
    value = float(sigma)
    if not math.isfinite(value) or value < 0:
        raise RestoreError(f"{name} must be a finite number >= 0, got {value}")
    if value > 1:
        # The usual mistake is a sigma in 0-255 units.
        raise RestoreError(
            f"{name} is in [0, 1] image units, got {value} (for 8-bit sigma 25 pass 25/255)"
        )
    return value


def _device_of(y: torch.Tensor, generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else y.device


def gaussian_like(y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``y``, drawn on the generator's device."""
    noise = torch.randn(
        y.shape, generator=generator, device=_device_of(y, generator), dtype=y.dtype
    )
    return noise.to(y.device)


class NoiseModel(nn.Module):
    """Base class: ``forward(y, generator)`` returns a noisy copy of ``y``.

    Attributes:
        sigma: standard deviation of the Gaussian part, in [0, 1] units.
    """

    sigma: float = 0.0

    def forward(
        self, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:  # noqa: D102
        raise NotImplementedError


class GaussianNoise(NoiseModel):
    """Additive white Gaussian noise N(0, sigma^2); float, not clipped, not quantized.

    Example:
        >>> noise = GaussianNoise(25 / 255)
        >>> y = noise(torch.zeros(1, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    """

    def __init__(self, sigma: float = 0.0) -> None:
        super().__init__()
        self.sigma = check_sigma(sigma)

    def forward(
        self, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return y + sigma * n with n ~ N(0, I); a copy of y when sigma is 0."""
        if self.sigma == 0:
            return y.clone()
        return y + self.sigma * gaussian_like(y, generator)

    def extra_repr(self) -> str:  # noqa: D102
        return f"sigma={self.sigma:.6g}"


class PoissonGaussianNoise(NoiseModel):
    """Satellite-sensor noise: y' = gain * Poisson(y / gain) + N(0, sigma^2).

    ``gain`` is the image-unit value of one photo-electron: the shot-noise
    variance at level y is gain * y. Negative inputs count as zero photons.
    """

    def __init__(self, gain: float, sigma: float = 0.0) -> None:
        super().__init__()
        if isinstance(gain, bool) or not isinstance(gain, Real) or not gain > 0 or gain == math.inf:
            raise RestoreError(f"gain must be a finite number > 0, got {gain!r}")
        self.gain = float(gain)
        self.sigma = check_sigma(sigma)

    def forward(
        self, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return the Poisson-Gaussian measurement of ``y``."""
        # torch.poisson has no half-precision kernel on CPU.
        dtype = y.dtype if y.dtype in (torch.float32, torch.float64) else torch.float32
        rate = (y.clamp_min(0) / self.gain).to(_device_of(y, generator), dtype)
        shot = torch.poisson(rate, generator=generator).to(y.device, y.dtype) * self.gain
        if self.sigma == 0:
            return shot
        return shot + self.sigma * gaussian_like(y, generator)

    def extra_repr(self) -> str:  # noqa: D102
        return f"gain={self.gain:.6g}, sigma={self.sigma:.6g}"
