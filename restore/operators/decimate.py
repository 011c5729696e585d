"""Decimation: keep one pixel in every factor x factor block, with no filter.

This is the sampling step of a sensor model (blur by the sensor's PSF, then
sample), so it is meant to follow a ``Blur`` inside a ``Compose``; on its own it
aliases. The kept pixel is the block's first one, ``x[..., ::f, ::f]``: output
pixel (i, j) sits at input pixel (f i, f j), not at the block's centre as in
``Downsample``.

Its rows are distinct unit vectors, so A A^T = I and the Moore-Penrose
pseudo-inverse is the adjoint itself: zero insertion.
"""
from __future__ import annotations

from numbers import Integral

import torch

from restore.errors import RestoreError
from restore.operators.base import Operator, check_image
from restore.operators.noise import GaussianNoise, NoiseModel


class Decimate(Operator):
    """Super-resolution operator y = x[..., ::factor, ::factor], scale 1 / factor.

    Args:
        factor: any integer >= 2 (satellite sensors use 2, 3, 4, 5...).
        sigma: Gaussian noise standard deviation in [0, 1] units.
        noise: a noise model to use instead of ``GaussianNoise(sigma)``.

    Example:
        >>> op = Decimate(5)
        >>> op(torch.rand(1, 4, 40, 40)).shape
        torch.Size([1, 4, 8, 8])
    """

    task = "sr"
    halo = 0

    def __init__(self, factor: int, sigma: float = 0.0, noise: NoiseModel | None = None) -> None:
        super().__init__(noise if noise is not None else GaussianNoise(sigma))
        if isinstance(factor, bool) or not isinstance(factor, Integral) or factor < 2:
            raise RestoreError(f"decimation factor must be an integer >= 2, got {factor!r}")
        self.factor = int(factor)
        self.scale = 1.0 / self.factor

    def extra_repr(self) -> str:
        """The factor, in the module's printed form."""
        return f"factor={self.factor}"

    def input_shape(self, y_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The high-resolution shape (B, C, H * factor, W * factor)."""
        b, c, h, w = y_shape
        return (b, c, h * self.factor, w * self.factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x: B x C x H/f x W/f, the pixel at offset (0, 0) of every f x f block."""
        check_image(x)
        h, w = x.shape[-2:]
        f = self.factor
        if h % f or w % f:
            # Silently dropping the remainder would shift the result against input_shape.
            raise RestoreError(
                f"image size {h}x{w} is not divisible by the decimation factor {f}; "
                f"crop it to {h - h % f}x{w - w % f}"
            )
        return x[..., ::f, ::f].clone()  # a copy: writing into y must not change x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y: y placed on the kept pixels of a B x C x H*f x W*f image of zeros."""
        check_image(y, "y")
        b, c, h, w = y.shape
        x = y.new_zeros(b, c, h * self.factor, w * self.factor)
        x[..., :: self.factor, :: self.factor] = y
        return x

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """A^+ y = A^T y (zero insertion), exact since A A^T = I."""
        return self.adjoint(y)
