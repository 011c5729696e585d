"""RED-Diff (Mardani et al. 2023): regularisation by denoising diffusion, for any differentiable operator.

The estimate mu is fitted by Adam, one step per diffusion timestep, from t near
T down to 0. At each step the prior's noise prediction e = eps(x_t, t) on
x_t = sqrt(abar_t) (2 mu - 1) + sqrt(1 - abar_t) eps is compared with the noise
that was drawn; that residual, weighted by the inverse SNR, pushes mu towards
images the prior finds likely, while the data term pulls A mu towards y:

    loss = lambda sqrt(1 - abar_t) / sqrt(abar_t) mean(stopgrad(e - eps) (2 mu - 1))
           + mean((2 y - 2 A mu)^2) / 2

Both terms are in the paper's [-1, 1] units (hence the factors 2); mu itself
lives in the toolkit's [0, 1] units, so a learning rate here moves the image
half as far as the same rate in the paper. The network is only evaluated
(never differentiated): the graph runs through the operator alone.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from tqdm import tqdm

from restore.diffusion import vp
from restore.errors import RestoreError
from restore.nets.unet import UNet, UNetConfig, pad_to
from restore.noise_field import NoiseSource
from restore.operators.base import Operator, check_image
from restore.options import option
from restore.restorers.base import Restoration, Restorer, register
from restore.tasks import task_of
from restore.weights import WEIGHTS_DIR, load_net

PRIOR = "diffusion-prior"
BETAS = (0.9, 0.99)  # the reference code's Adam betas
PRIOR_CHANNELS = 3


@dataclass(frozen=True)
class RedDiffSettings:
    """One call's settings: Adam steps (= timesteps), lambda and learning rate."""

    steps: int
    lam: float
    lr: float


# (lambda, lr) per task: the best of a coarse grid on 4 BSDS500 val crops at 100
# steps (benchmarks/results/reddiff_tune.md), for SR x4, Gaussian blur 3 px with
# noise 6.4/255, 50% missing pixels and noise 25/255. The data term does not see
# the noise level, so denoising needs the prior weighted far more; the noiseless
# tasks want little of it. The deblur, inpaint and denoise values lie on the edge
# of what was tried (the CPU budget ended the search there).
DEFAULTS: dict[str, tuple[float, float]] = {
    "denoise": (2.0, 0.15),
    "deblur": (0.0625, 0.15),
    "sr": (0.05, 0.2),
    "inpaint": (0.0125, 0.3),
}
DEFAULT_STEPS = 100
FALLBACK = (0.25, 0.1)  # operators of other tasks (user-written ones): the paper's lambda and about its lr


def default_settings(operator: Operator, steps: int = DEFAULT_STEPS) -> RedDiffSettings:
    """The per-task defaults (see ``DEFAULTS``)."""
    lam, lr = DEFAULTS.get(task_of(operator), FALLBACK)
    return RedDiffSettings(steps, lam, lr)


def frozen_prior(folder: Path, device: torch.device) -> UNet:
    """The shipped diffusion prior (verified), frozen, channels-last (about 20% faster here), in eval mode."""
    return load_net(PRIOR, lambda config: UNet(UNetConfig.from_dict(config)), folder, device, channels_last=True)


def _name(operator: Operator) -> str:
    return type(operator).__name__


def initial_estimate(y: torch.Tensor, operator: Operator) -> torch.Tensor:
    """mu_0 = A^+ y clamped to [0, 1]; mid-grey where an operator has no pseudo-inverse."""
    try:
        x0 = operator.pinv(y)
    except NotImplementedError:
        # A user-written operator need only define forward; its input has the shape input_shape says.
        x0 = y.new_full(operator.input_shape(tuple(y.shape)), 0.5)
    except (RuntimeError, TypeError) as e:  # a user's pinv that fails: one line, not a traceback
        raise RestoreError(f"operator {_name(operator)}: pinv failed on y of shape {tuple(y.shape)}: {e}") from None
    return x0.detach().float().clamp(0, 1)


def check_operator(operator: Operator, x: torch.Tensor, y: torch.Tensor) -> None:
    """Refuse operators whose A x does not match y's shape or has no (or a zero) gradient in x."""
    probe_x = x.detach().clone().requires_grad_(True)
    try:
        out = operator(probe_x)
    except (RuntimeError, ValueError, TypeError) as e:
        raise RestoreError(f"operator {_name(operator)} failed on an image of shape {tuple(x.shape)}: {e}") from None
    if not isinstance(out, torch.Tensor) or out.shape != y.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise RestoreError(f"operator {_name(operator)} maps an image of shape {tuple(x.shape)} to {shape}, "
                           f"but y has shape {tuple(y.shape)}")
    not_differentiable = RestoreError(
        f"operator {_name(operator)} is not differentiable (A x has no gradient with respect to x): "
        "RED-Diff needs gradients of A; avoid detach(), rounding, numpy or integer casts in its forward")
    if not out.requires_grad:
        raise not_differentiable
    # A fixed, non-constant probe: rounding or a straight-through zero gradient shows up as all zeros.
    probe = torch.arange(out.numel(), device=out.device, dtype=out.dtype).sin().view_as(out)
    (grad,) = torch.autograd.grad((out * probe).sum(), probe_x, allow_unused=True)
    if grad is None or not bool(grad.ne(0).any()):
        raise not_differentiable


def prior_residual(net: UNet, mu: torch.Tensor, t: int, abar_t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """stopgrad(e - eps): the prior's noise prediction at x_t minus the drawn noise (B x 3 x H x W)."""
    z = 2 * mu.detach() - 1
    z = z.expand(-1, PRIOR_CHANNELS, -1, -1) if z.shape[1] == 1 else z  # gray: the prior sees R = G = B
    x_t = abar_t.sqrt() * z + (1 - abar_t).sqrt() * eps
    padded, (h, w) = pad_to(x_t, net.multiple)
    padded = padded.contiguous(memory_format=torch.channels_last)
    times = torch.full((x_t.shape[0],), float(t), device=x_t.device)
    with torch.no_grad():
        e = net(padded, times)[..., :h, :w].float()
    return e - eps


def abar_at(abar: torch.Tensor, t: float) -> torch.Tensor:
    """abar at a fractional timestep (linear interpolation of the table)."""
    lo = min(int(t), len(abar) - 2)
    frac = min(max(t - lo, 0.0), 1.0)
    return abar[lo] * (1 - frac) + abar[lo + 1] * frac


def prior_denoise(net: UNet, y: torch.Tensor, sigma: float) -> torch.Tensor:
    """The prior as a plain Gaussian denoiser: one network evaluation at noise std ``sigma`` ([0, 1] units).

    With z = 2y - 1 and s = 2 sigma ([-1, 1] units), sqrt(abar_t) z is x_t at the
    (fractional) timestep whose noise level is s, so x0 = z - s eps(x_t, t).
    Gray images go through the prior as R = G = B and come back averaged.
    """
    abar = vp.alphas_cumprod(y.device)
    s = 2 * float(sigma)
    t = vp.timestep_for_sigma(s, abar)
    z = 2 * y.float() - 1
    z3 = z.expand(-1, PRIOR_CHANNELS, -1, -1) if z.shape[1] == 1 else z
    padded, (h, w) = pad_to(abar_at(abar, t).sqrt() * z3, net.multiple)
    padded = padded.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        eps = net(padded, torch.full((z.shape[0],), t, device=y.device))[..., :h, :w].float()
    x0 = (z3 - s * eps + 1) / 2
    return x0.mean(dim=1, keepdim=True) if z.shape[1] == 1 else x0


def fit(net: UNet, y: torch.Tensor, operator: Operator, mu0: torch.Tensor, settings: RedDiffSettings,
        noise: NoiseSource, progress: bool = False) -> torch.Tensor:
    """Run RED-Diff's Adam loop from ``mu0``; returns mu (not clamped)."""
    mu = mu0.clone().requires_grad_(True)
    opt = torch.optim.Adam([mu], lr=settings.lr, betas=BETAS)
    abar = vp.alphas_cumprod(y.device)
    b, _, h, w = mu.shape
    for t in tqdm(vp.descending_timesteps(settings.steps), disable=not progress, leave=False, unit="step",
                  desc="RED-Diff"):
        eps = noise.randn((b, PRIOR_CHANNELS, h, w), device=y.device, dtype=torch.float32)
        residual = prior_residual(net, mu, t, abar[t], eps)
        z = 2 * mu - 1
        # A gray mu is broadcast over the three channels: its gradient is their mean.
        reg = (residual * z.expand_as(residual)).mean()
        weight = settings.lam * ((1 - abar[t]) / abar[t]).sqrt()
        # The data term stays float32 under a reduced-precision autocast (--precision bf16/fp16): only
        # the prior's evaluation, the cost, is worth running in half precision.
        with torch.autocast(y.device.type, enabled=False):
            data = 2 * ((y - operator(mu)) ** 2).mean()  # mean((2y - 2Amu)^2) / 2: [-1, 1] units
        loss = weight * reg + data
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return mu.detach()


@dataclass(frozen=True)
class RedDiffOptions:
    steps: int | None = option(None, "Adam steps, one per timestep of the descending schedule (default 100)",
                               low=1, high=vp.T)
    lam: float | None = option(None, "lambda, the prior's weight (default per task)", above=0)
    lr: float | None = option(None, "Adam learning rate on the image in [0, 1] units (default per task)", above=0)
    weights_dir: Path | None = option(None, "folder of the shipped weights (default: the package's)")


@register("reddiff")
class RedDiff(Restorer):
    """RED-Diff with the shipped diffusion prior.

    Options (``RedDiffOptions``): ``steps``, ``lam`` and ``lr`` (defaults per task,
    see ``DEFAULTS``), ``weights_dir``. ``progress`` shows a bar over the steps.
    """

    name: ClassVar[str] = "reddiff"
    operators: ClassVar[tuple[type[Operator], ...]] = (Operator,)  # any differentiable operator
    channels: ClassVar[tuple[int, ...] | None] = (1, 3)
    description: ClassVar[str] = "RED-Diff: variational restoration with a diffusion prior (any differentiable operator)"
    half_precision = {  # benchmarks/studies/precision_safety.py measures them
        "bf16": "small loss: -0.01 dB deblur at 256 px, 100 steps (benchmarks/results/reddiff_speed.md); -0.12 dB"
                " on a 96 px crop, 30 steps (benchmarks/results/precision_safety.md)",
        "fp16": "untested: not measured on a GPU; CPU autocast (few operations in fp16 there): -0.008 dB on a 96 "
                "px crop (benchmarks/results/precision_safety.md)",
    }
    stochastic: ClassVar[bool] = True
    # The U-Net sees more than 100 px, and every step feeds A^T of the residual
    # back, so strictly every pixel depends on the whole tile. 32 px of halo (plus
    # the operator's) keeps tiles' cores close to the untiled result while adding
    # only half a tile's area of extra work on 256-px tiles; blended overlaps hide
    # what differences remain.
    halo = 32
    tile_multiple = 8  # the prior's U-Net halves three times

    Options = RedDiffOptions

    def setup(self) -> None:
        o = self.options
        self.steps, self.lam, self.lr = o.steps, o.lam, o.lr
        self.weights_dir = o.weights_dir or WEIGHTS_DIR
        self._net: UNet | None = None

    def check(self, y: torch.Tensor, operator: Operator) -> None:
        """The base class's checks, except that any operator task is accepted: RED-Diff needs only gradients of A."""
        check_image(y, "y")
        if not isinstance(operator, Operator):
            raise RestoreError(f"operator must be a restore.operators.Operator, got {type(operator).__name__}")
        if y.shape[1] not in self.channels:
            raise RestoreError(f"model '{self.name}' takes images with 1 or 3 channels, got {y.shape[1]}")

    def to(self, device: str | torch.device) -> "RedDiff":
        """Run on ``device``; the prior is moved there on first use."""
        if torch.device(device) != self.device:
            self.device = torch.device(device)
            self._net = None
        return self

    def settings(self, operator: Operator) -> RedDiffSettings:
        """The per-task defaults overridden by the constructor's arguments."""
        base = default_settings(operator, self.steps or DEFAULT_STEPS)
        return RedDiffSettings(base.steps, self.lam or base.lam, self.lr or base.lr)

    def prior(self) -> UNet:
        """The frozen prior on this restorer's device."""
        if self._net is None:
            self._net = frozen_prior(self.weights_dir, self.device)
        return self._net

    def _restore(self, y: torch.Tensor, operator: Operator, *, generator, noise: NoiseSource) -> Restoration:
        if not bool(torch.isfinite(y).all()):
            raise RestoreError("y has NaN or infinite values; RED-Diff needs a finite measurement")
        settings = self.settings(operator)
        operator = operator.to(self.device)
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        # Grad is needed even when the caller runs under no_grad / inference_mode; the clone
        # makes y an ordinary tensor that autograd may use.
        with torch.inference_mode(False), torch.enable_grad():
            net = self.prior()
            y = y.to(self.device, torch.float32).clone()
            mu0 = initial_estimate(y, operator)
            check_operator(operator, mu0, y)
            mu = fit(net, y, operator, mu0, settings, noise, progress=show)
        info = {"steps": settings.steps, "lambda": settings.lam, "lr": settings.lr}
        return Restoration(image=mu.clamp(0, 1).cpu(), info=info)
