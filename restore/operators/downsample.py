"""Downsampling by an integer factor: anti-alias filter, then decimation.

The operator is separable, A x = M_h x M_w^T, with one explicit matrix per axis
(n / factor x n). Boundaries are folded into those matrices, so the adjoint
A^T y = M_h^T y M_w is exact and the pseudo-inverse is exact too:
A^+ = M_h^+ (x) M_w^+, with M^+ = M^T (M M^T)^-1 computed once per size.

Filters:
    "bicubic": MATLAB ``imresize`` bicubic downscaling with antialiasing: the
        cubic kernel (a = -0.5) stretched by the factor, rows normalised to sum 1,
        and the **symmetric** boundary (edge pixel repeated: ... 1 0 | 0 1 ...).
    "box": the mean of each factor x factor block (no boundary needed).
"""
from __future__ import annotations

import math

import torch

from restore.errors import RestoreError
from restore.operators.base import Operator, check_image
from restore.operators.noise import GaussianNoise, NoiseModel

FACTORS = (2, 3, 4)
FILTERS = ("bicubic", "box")


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (support [-2, 2])."""
    ax = x.abs()
    near = (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
    far = (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def bicubic_matrix(n: int, factor: int) -> torch.Tensor:
    """The (n / factor) x n float64 matrix of antialiased bicubic downscaling of one axis."""
    m = n // factor
    width = 4.0 * factor  # the cubic's support, widened by the factor
    taps = math.ceil(width) + 2
    # Output sample i (0-based) is centred at input coordinate (i + 0.5) * factor - 0.5.
    centre = (torch.arange(m, dtype=torch.float64) + 0.5) * factor - 0.5
    left = torch.floor(centre - width / 2)
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    weights = cubic((centre[:, None] - idx) / factor) / factor
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Symmetric boundary: fold out-of-range taps back onto the image.
    folded = idx.long() % (2 * n)
    folded = torch.where(folded >= n, 2 * n - 1 - folded, folded)
    mat = torch.zeros(m, n, dtype=torch.float64)
    mat.scatter_add_(1, folded, weights)
    return mat


def box_matrix(n: int, factor: int) -> torch.Tensor:
    """The (n / factor) x n float64 matrix averaging consecutive blocks of ``factor``."""
    rows = torch.arange(n) // factor
    mat = torch.zeros(n // factor, n, dtype=torch.float64)
    mat[rows, torch.arange(n)] = 1.0 / factor
    return mat


class Downsample(Operator):
    """Super-resolution operator: y = decimate(filter(x)), scale 1 / factor.

    Args:
        factor: 2, 3 or 4.
        filter: "bicubic" (MATLAB imresize, default) or "box".
        sigma: Gaussian noise standard deviation in [0, 1] units.
        noise: a noise model to use instead of ``GaussianNoise(sigma)``.

    Example:
        >>> op = Downsample(4)
        >>> op(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 3, 16, 16])
    """

    task = "sr"

    def __init__(
        self,
        factor: int = 4,
        filter: str = "bicubic",  # noqa: A002 - the CLI's name for it
        sigma: float = 0.0,
        noise: NoiseModel | None = None,
    ) -> None:
        super().__init__(noise if noise is not None else GaussianNoise(sigma))
        if isinstance(factor, bool) or factor not in FACTORS:
            raise RestoreError(f"scale factor must be one of 2, 3, 4, got {factor!r}")
        if filter not in FILTERS:
            raise RestoreError(f"downsample filter must be one of {', '.join(FILTERS)}, got {filter!r}")
        self.factor = int(factor)
        self.filter = filter
        self.scale = 1.0 / self.factor
        self.halo = 2 * self.factor if filter == "bicubic" else self.factor
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def extra_repr(self) -> str:  # noqa: D102
        return f"factor={self.factor}, filter={self.filter!r}"

    def _matrices(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, M^+) for an axis of n input pixels, on like's device and dtype."""
        key = (n, like.device, like.dtype)
        if key not in self._cache:
            build = bicubic_matrix if self.filter == "bicubic" else box_matrix
            mat = build(n, self.factor)
            # Rows of M are independent (M M^T is well conditioned), so this is exact.
            pinv = torch.linalg.pinv(mat)
            self._cache[key] = (mat.to(like.device, like.dtype), pinv.to(like.device, like.dtype))
        return self._cache[key]

    def input_shape(self, y_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The high-resolution shape (B, C, H * factor, W * factor)."""
        b, c, h, w = y_shape
        return (b, c, h * self.factor, w * self.factor)

    def _check_hr(self, x: torch.Tensor) -> None:
        check_image(x)
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise RestoreError(
                f"image size {h}x{w} is not divisible by the scale factor {self.factor}; "
                f"crop it to {h - h % self.factor}x{w - w % self.factor}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x: B x C x H/f x W/f."""
        self._check_hr(x)
        mh, _ = self._matrices(x.shape[-2], x)
        mw, _ = self._matrices(x.shape[-1], x)
        return mh @ x @ mw.T

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y: B x C x H*f x W*f."""
        check_image(y, "y")
        mh, _ = self._matrices(y.shape[-2] * self.factor, y)
        mw, _ = self._matrices(y.shape[-1] * self.factor, y)
        return mh.T @ y @ mw

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """A^+ y, the minimum-norm x with A x = y: B x C x H*f x W*f."""
        check_image(y, "y")
        _, ph = self._matrices(y.shape[-2] * self.factor, y)
        _, pw = self._matrices(y.shape[-1] * self.factor, y)
        return ph @ y @ pw.T
