"""Blur: convolution of every channel with one 2-D kernel.

Boundary convention. The default is **circular** (periodic) convolution: the
image is treated as one period of a periodic signal. It makes A diagonal in the
Fourier domain, so ``forward`` and ``adjoint`` are exact adjoints of each other
and ``pinv`` is a closed-form Tikhonov (Wiener-style) inverse. Tiling hides the
wrap-around, since the tiler crops each tile's ``halo``.

``boundary="reflect" | "symmetric" | "replicate"`` pad the image before a
direct convolution instead. Their adjoints are exact too: padding is a gather
by index, and its adjoint is the scatter-add by the same index. Their ``pinv``
is approximate (a Wiener inverse of the mirrored image, cropped back).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.operators.base import Operator, check_image
from restore.operators.noise import GaussianNoise, NoiseModel

BOUNDARIES = ("circular", "reflect", "symmetric", "replicate")
METHODS = ("auto", "fft", "direct")
# "auto" switches to the FFT above this kernel side, where it becomes the cheaper route.
_DIRECT_MAX_SIZE = 9
# Natural images carry roughly this much power per pixel (std about 0.22), which
# turns the noise variance into the Wiener noise-to-signal ratio.
_SIGNAL_POWER = 0.05
# Smallest regularisation, so that a noiseless pinv does not explode near the kernel's zeros.
_EPS_FLOOR = 1e-3


def pad_index(n: int, r: int, boundary: str, device: torch.device | None = None) -> torch.Tensor:
    """Source indices of a length-n axis padded by r on both sides.

    Works for any r (padding wider than the axis wraps or reflects repeatedly).
    """
    i = torch.arange(-r, n + r, device=device)
    if boundary == "circular":
        return i % n
    if boundary == "replicate" or n == 1:
        return i.clamp(0, n - 1)
    if boundary == "reflect":  # edge sample not repeated: ... 2 1 | 0 1 2 ...
        m = i % (2 * n - 2)
        return torch.where(m >= n, 2 * n - 2 - m, m)
    if boundary == "symmetric":  # edge sample repeated: ... 1 0 | 0 1 2 ...
        m = i % (2 * n)
        return torch.where(m >= n, 2 * n - 1 - m, m)
    raise RestoreError(f"boundary must be one of {', '.join(BOUNDARIES)}, got {boundary!r}")


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    # FFT and CPU convolutions lack half-precision kernels; compute in float32 then.
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _as_kernel(kernel: object) -> torch.Tensor:
    if isinstance(kernel, np.ndarray):
        kernel = torch.from_numpy(kernel)
    if not isinstance(kernel, torch.Tensor):
        raise RestoreError(f"kernel must be a 2-D tensor, got {type(kernel).__name__}")
    if kernel.ndim != 2 or kernel.numel() == 0:
        raise RestoreError(f"kernel must be a non-empty 2-D tensor, got shape {tuple(kernel.shape)}")
    k = kernel.detach().to("cpu", torch.float64)
    if not torch.isfinite(k).all() or not k.abs().sum() > 0:
        raise RestoreError("kernel must be finite and not all zero")
    # An even side gets a zero row/column at the end: the centre stays at index size // 2.
    return F.pad(k, (0, 1 - k.shape[1] % 2, 0, 1 - k.shape[0] % 2))


class Blur(Operator):
    """A x = k * x, per channel, for any B and C.

    Args:
        kernel: 2-D kernel (centre at index ``size // 2``); used as given, not renormalised.
        sigma: Gaussian noise standard deviation in [0, 1] units.
        boundary: "circular" (default, exact FFT pinv), "reflect", "symmetric" or "replicate".
        method: "fft" (circular only), "direct" (spatial convolution), or "auto".
        eps: Tikhonov weight of ``pinv``; default ``max(sigma^2 / 0.05, 1e-3)``.
        noise: a noise model to use instead of ``GaussianNoise(sigma)``.

    Example:
        >>> op = Blur(gaussian_kernel(1.6), sigma=0.01)
        >>> y = op.measure(torch.rand(1, 3, 32, 32), torch.Generator().manual_seed(0))
    """

    task = "deblur"
    scale = 1.0

    def __init__(
        self,
        kernel: torch.Tensor,
        sigma: float = 0.0,
        boundary: str = "circular",
        method: str = "auto",
        eps: float | None = None,
        noise: NoiseModel | None = None,
    ) -> None:
        super().__init__(noise if noise is not None else GaussianNoise(sigma))
        if boundary not in BOUNDARIES:
            raise RestoreError(f"boundary must be one of {', '.join(BOUNDARIES)}, got {boundary!r}")
        if method not in METHODS:
            raise RestoreError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if method == "fft" and boundary != "circular":
            raise RestoreError(f"method='fft' needs boundary='circular', got {boundary!r}")
        if eps is not None and not (isinstance(eps, (int, float)) and 0 < eps < math.inf):
            raise RestoreError(f"eps must be a finite number > 0, got {eps!r}")
        k = _as_kernel(kernel)
        self.register_buffer("kernel", k)
        self.boundary = boundary
        if method == "auto":
            use_fft = boundary == "circular" and max(k.shape) > _DIRECT_MAX_SIZE
            method = "fft" if use_fft else "direct"
        self.method = method
        self.eps = float(eps) if eps is not None else max(self.sigma**2 / _SIGNAL_POWER, _EPS_FLOOR)
        self.halo = max(k.shape) // 2

    def extra_repr(self) -> str:  # noqa: D102
        kh, kw = self.kernel.shape
        return f"kernel={kh}x{kw}, boundary={self.boundary!r}, method={self.method!r}, eps={self.eps:.3g}"

    # -- building blocks -------------------------------------------------------
    def _spectrum(self, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        """rfft2 of the kernel wrapped onto an h x w grid, centre at (0, 0)."""
        k = self.kernel.to(like.device, like.dtype)
        kh, kw = k.shape
        rows = (torch.arange(kh, device=like.device) - kh // 2) % h
        cols = (torch.arange(kw, device=like.device) - kw // 2) % w
        grid = torch.zeros(h, w, device=like.device, dtype=like.dtype)
        # accumulate: a kernel wider than the image wraps onto itself.
        grid.index_put_((rows[:, None].expand(kh, kw), cols[None, :].expand(kh, kw)), k, accumulate=True)
        return torch.fft.rfft2(grid)

    def _fft_apply(self, x: torch.Tensor, conj: bool) -> torch.Tensor:
        h, w = x.shape[-2:]
        spec = self._spectrum(h, w, x)
        spec = spec.conj() if conj else spec
        return torch.fft.irfft2(torch.fft.rfft2(x) * spec, s=(h, w))

    def _weight(self, like: torch.Tensor) -> torch.Tensor:
        # conv2d correlates; flipping the kernel makes it a true convolution.
        return self.kernel.flip(0, 1).to(like.device, like.dtype)[None, None]

    def _direct_forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        kh, kw = self.kernel.shape
        xp = x.index_select(-2, pad_index(h, kh // 2, self.boundary, x.device))
        xp = xp.index_select(-1, pad_index(w, kw // 2, self.boundary, x.device))
        out = F.conv2d(xp.reshape(b * c, 1, h + kh - 1, w + kw - 1), self._weight(x))
        return out.reshape(b, c, h, w)

    def _direct_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        b, c, h, w = y.shape
        kh, kw = self.kernel.shape
        z = F.conv_transpose2d(y.reshape(b * c, 1, h, w), self._weight(y))
        # The adjoint of a gather-by-index pad is a scatter-add by the same index.
        rows = torch.zeros(b * c, 1, h, w + kw - 1, device=y.device, dtype=y.dtype)
        rows.index_add_(-2, pad_index(h, kh // 2, self.boundary, y.device), z)
        out = torch.zeros(b * c, 1, h, w, device=y.device, dtype=y.dtype)
        out.index_add_(-1, pad_index(w, kw // 2, self.boundary, y.device), rows)
        return out.reshape(b, c, h, w)

    # -- operator interface ----------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x: the blurred image, same shape as x."""
        check_image(x)
        xw = x.to(_work_dtype(x.dtype))
        out = self._fft_apply(xw, conj=False) if self.method == "fft" else self._direct_forward(xw)
        return out.to(x.dtype)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y: correlation with the kernel under the same boundary."""
        check_image(y, "y")
        yw = y.to(_work_dtype(y.dtype))
        out = self._fft_apply(yw, conj=True) if self.method == "fft" else self._direct_adjoint(yw)
        return out.to(y.dtype)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """Tikhonov inverse conj(K) Y / (|K|^2 + eps) in the Fourier domain.

        Exact for the circular boundary. For the others, y is first mirrored to
        2H x 2W, which is periodic without jumps (the DCT trick), so the inverse
        does not ring at the borders; the result is cropped back.
        """
        check_image(y, "y")
        yw = y.to(_work_dtype(y.dtype))
        h, w = y.shape[-2:]
        if self.boundary != "circular":
            yw = torch.cat([yw, yw.flip(-2)], dim=-2)
            yw = torch.cat([yw, yw.flip(-1)], dim=-1)
        hp, wp = yw.shape[-2:]
        spec = self._spectrum(hp, wp, yw)
        filt = spec.conj() / (spec.abs() ** 2 + self.eps)
        out = torch.fft.irfft2(torch.fft.rfft2(yw) * filt, s=(hp, wp))
        return out[..., :h, :w].to(y.dtype)
