"""Inpainting: a binary mask that keeps observed pixels and zeroes missing ones."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.operators.base import Operator, check_image
from restore.operators.noise import GaussianNoise, NoiseModel


def random_mask(
    h: int, w: int, fraction_missing: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A 1 x 1 x h x w mask with each pixel missing (0) with probability ``fraction_missing``."""
    for name, v in (("h", h), ("w", w)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise RestoreError(f"mask {name} must be a positive integer, got {v!r}")
    if isinstance(fraction_missing, bool) or not (
        isinstance(fraction_missing, (int, float)) and 0 <= fraction_missing <= 1
    ):
        raise RestoreError(f"fraction_missing must be a number in [0, 1], got {fraction_missing!r}")
    device = generator.device if generator is not None else None
    u = torch.rand(1, 1, h, w, generator=generator, device=device)
    return (u >= fraction_missing).float().cpu()


def _as_mask(mask: object) -> torch.Tensor:
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(mask)
    if not isinstance(mask, torch.Tensor):
        raise RestoreError(f"mask must be a tensor, got {type(mask).__name__}")
    if mask.ndim == 2:
        mask = mask[None, None]
    if mask.ndim != 4 or mask.numel() == 0:
        raise RestoreError(f"mask must have shape (H, W) or (B, C, H, W), got {tuple(mask.shape)}")
    m = mask.detach().to(torch.float32)
    if not ((m == 0) | (m == 1)).all():
        raise RestoreError("mask must be binary: 1 = observed, 0 = missing")
    return m


def _push_pull(vw: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Fill where ``w`` is 0 from ever coarser averages (pull), upsampled back (push).

    ``vw`` holds values premultiplied by their weights ``w`` in [0, 1].
    """
    known = w > 0
    est = vw / w.clamp_min(1e-12)
    if bool(known.all()):
        return est
    h, wd = w.shape[-2:]
    if h == 1 and wd == 1:
        return est  # nothing observed anywhere in this channel: stays 0
    coarse_vw = F.avg_pool2d(vw, 2, ceil_mode=True)
    coarse_w = F.avg_pool2d(w, 2, ceil_mode=True)
    coarse = _push_pull(coarse_vw, coarse_w)
    up = F.interpolate(coarse, size=(h, wd), mode="bilinear", align_corners=False)
    return torch.where(known, est, up)


class Inpaint(Operator):
    """A x = mask * x, with mask 1 = observed and 0 = missing.

    Args:
        mask: (H, W), (1, 1, H, W) or (B, C, H, W) binary tensor, broadcast over x.
        sigma: Gaussian noise standard deviation in [0, 1] units.
        noise: a noise model to use instead of ``GaussianNoise(sigma)``.

    Example:
        >>> op = Inpaint(random_mask(32, 32, 0.5, torch.Generator().manual_seed(0)))
        >>> y = op(torch.rand(2, 3, 32, 32))
    """

    task = "inpaint"
    scale = 1.0
    halo = 0

    def __init__(self, mask: torch.Tensor, sigma: float = 0.0, noise: NoiseModel | None = None) -> None:
        super().__init__(noise if noise is not None else GaussianNoise(sigma))
        self.register_buffer("mask", _as_mask(mask))

    def extra_repr(self) -> str:  # noqa: D102
        return f"mask={tuple(self.mask.shape)}, observed={self.mask.mean().item():.3f}"

    def for_tiles(self, windows: list[tuple[int, int, int, int]]) -> "Inpaint":
        """The mask cropped to each window, stacked along the batch dimension."""
        if self.mask.shape[-2:] == (1, 1):
            return self
        crops = [self.mask[..., r0:r1, c0:c1] for r0, r1, c0, c1 in windows]
        if self.mask.shape[0] != 1:
            raise RestoreError("a mask with a batch dimension cannot be cut into tiles; use one 1 x 1 x H x W mask")
        return Inpaint(torch.cat(crops), noise=self.noise)

    def _mask_for(self, x: torch.Tensor, name: str) -> torch.Tensor:
        check_image(x, name)
        try:
            torch.broadcast_shapes(self.mask.shape, x.shape)
        except RuntimeError:
            raise RestoreError(
                f"{name} of shape {tuple(x.shape)} does not match the mask of shape {tuple(self.mask.shape)}"
            ) from None
        return self.mask.to(x.device, x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x = mask * x."""
        return self._mask_for(x, "x") * x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y = mask * y (A is diagonal)."""
        return self._mask_for(y, "y") * y

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """A^+ y = mask * y, the exact pseudo-inverse (missing pixels are 0).

        Use :meth:`fill` for an initialisation with the holes filled.
        """
        return self._mask_for(y, "y") * y

    def fill(self, y: torch.Tensor) -> torch.Tensor:
        """Observed pixels of y kept, missing ones filled smoothly from their surroundings.

        A push-pull (coarse-to-fine normalised averaging) fill: fast at any hole size.
        """
        m = self._mask_for(y, "y")
        dtype = y.dtype if y.dtype in (torch.float32, torch.float64) else torch.float32
        w = m.expand(torch.broadcast_shapes(m.shape, y.shape)).to(dtype)
        out = _push_pull(w * y.to(dtype), w)
        return out.to(y.dtype)
