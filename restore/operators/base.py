"""The degradation-operator interface every restorer inverts.

An operator is an ``nn.Module`` whose ``forward(x)`` is the noiseless A x on
B x C x H x W float tensors in [0, 1]. It carries its noise model, so that
``measure`` produces exactly the data a restorer is asked to invert.
"""
from __future__ import annotations

import torch
from torch import nn

from restore.errors import RestoreError
from restore.operators.noise import GaussianNoise, NoiseModel


def check_image(x: torch.Tensor, name: str = "x") -> None:
    """Raise a RestoreError unless ``x`` is a floating B x C x H x W tensor."""
    if not isinstance(x, torch.Tensor):
        raise RestoreError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise RestoreError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise RestoreError(f"{name} must be a floating-point tensor, got {x.dtype}")


class Operator(nn.Module):
    """A linear degradation y = A x + n.

    Attributes:
        task: the row of the task table (``restore.tasks``) it belongs to, as records and
            tables name it; restorers decide by the operator's type, not by this label.
        noise: the noise model applied by ``measure``.
        scale: output size / input size (1/4 for x4 super-resolution).
        halo: pixels of input context one output pixel depends on (for tiling).
    """

    task: str = "generic"
    scale: float = 1.0
    halo: int = 0

    def __init__(self, noise: NoiseModel | None = None) -> None:
        super().__init__()
        self.noise = noise if noise is not None else GaussianNoise(0.0)

    @property
    def sigma(self) -> float:
        """Standard deviation of the Gaussian part of the noise, in [0, 1] units."""
        return self.noise.sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - A x
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y."""
        raise NotImplementedError

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """A pseudo-inverse of y (or a good initialisation for iterative solvers)."""
        raise NotImplementedError

    def input_shape(self, y_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of x given the shape of y = A x."""
        b, c, h, w = y_shape
        return (b, c, round(h / self.scale), round(w / self.scale))

    def for_tiles(self, windows: list[tuple[int, int, int, int]]) -> "Operator":
        """The operator for a batch of tiles cut at ``windows`` (row0, row1, col0, col1 in y pixels).

        Operators that act the same everywhere return themselves; those with
        per-pixel data (an inpainting mask) return one with that data cropped
        and stacked along the batch dimension.
        """
        return self

    def measure(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noisy measurement y = A x + n, seeded by ``generator``."""
        check_image(x)
        return self.noise(self.forward(x), generator=generator)
