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
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.operators.base import Operator, check_image
from restore.operators.downsample import cubic
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

    def interpolate(self, y: torch.Tensor) -> torch.Tensor:
        """Keys cubic interpolation of y onto the fine grid, through the kept samples.

        Not a pseudo-inverse (it fills the pixels A ignores) but the usual
        initialisation for iterative restorers: A interpolate(y) = y exactly,
        since the cubic kernel is 1 at 0 and 0 at the other integers.
        """
        check_image(y, "y")
        f = self.factor
        taps = torch.arange(-2 * f + 1, 2 * f, dtype=torch.float64)
        kernel = cubic(taps / f).to(y.device, y.dtype)
        c = y.shape[1]
        x = self.adjoint(y)
        # Replicate the edge: the last kept pixel sits f - 1 pixels before the end.
        pad = 2 * f - 1
        x = F.pad(x, [pad, pad, pad, pad])
        x = _fill_edges(x, y, f, pad)
        x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _fill_edges(x: torch.Tensor, y: torch.Tensor, f: int, pad: int) -> torch.Tensor:
    """Put replicated edge samples of y on the sample grid of the padding (so borders interpolate flat)."""
    h, w = y.shape[-2:]
    rows = torch.arange(-2, h + 2).clamp(0, h - 1)
    cols = torch.arange(-2, w + 2).clamp(0, w - 1)
    ext = y[..., rows, :][..., :, cols]
    grid = torch.zeros_like(x)
    # Sample k of the extended grid (k = -2 .. n + 1) sits at padded index pad + f k.
    r_idx = pad + f * torch.arange(-2, h + 2)
    c_idx = pad + f * torch.arange(-2, w + 2)
    keep_r = (r_idx >= 0) & (r_idx < x.shape[-2])
    keep_c = (c_idx >= 0) & (c_idx < x.shape[-1])
    grid[..., r_idx[keep_r][:, None], c_idx[keep_c][None, :]] = ext[..., keep_r, :][..., :, keep_c]
    return grid
