"""Denoising: the identity operator with a noise model."""
from __future__ import annotations

import torch

from restore.operators.base import Operator, check_image
from restore.operators.noise import GaussianNoise, NoiseModel


class Denoise(Operator):
    """A = I; the measurement is x plus noise.

    Args:
        sigma: Gaussian noise standard deviation in [0, 1] units (``25 / 255``).
        noise: a noise model to use instead of ``GaussianNoise(sigma)``.

    Example:
        >>> op = Denoise(sigma=25 / 255)
        >>> y = op.measure(torch.rand(1, 3, 16, 16), torch.Generator().manual_seed(0))
    """

    task = "denoise"
    scale = 1.0
    halo = 0

    def __init__(self, sigma: float = 0.0, noise: NoiseModel | None = None) -> None:
        super().__init__(noise if noise is not None else GaussianNoise(sigma))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x = x."""
        check_image(x)
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y = y."""
        check_image(y, "y")
        return y

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """A^+ y = y."""
        check_image(y, "y")
        return y
