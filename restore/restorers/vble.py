"""VBLE (Biquard et al. 2023): variational Bayes in the latent space of a compressive autoencoder.

The posterior of the latents given y is approximated by boxes,
q(z) = U(zbar +- a_z / 2) and q(h) = U(hbar +- a_h / 2), fitted by minimising
the negative ELBO with one sample per step:

    ||A clip(D(z)) - y||^2 / (2 sigma^2 HW) + lambda [-log p(z, h) - sum log a_z - sum log a_h] / HW

(lambda = 1 is the exact negative ELBO). Decoding boxes' samples gives
posterior samples of x: their mean is the MMSE estimate and their per-pixel
standard deviation the uncertainty map. Any linear operator of the toolkit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.nets.cae import MULTIPLE, CaeConfig, CompressiveAutoencoder, pad_to_multiple
from restore.noise_field import NoiseSource
from restore.operators.base import Operator
from restore.operators.inpaint import Inpaint
from restore.options import option
from restore.restorers.base import Restoration, Restorer, register
from restore.tasks import task_of
from restore.weights import WEIGHTS_DIR, load_net, shipped

LOG_A_MIN, LOG_A_MAX = math.log(1.5e-5), math.log(20.0)
SIGMA_FLOOR = 0.5 / 255  # noise-free measurements still need a finite data weight


@dataclass(frozen=True)
class VbleSettings:
    """One task's settings: which autoencoder (its rate trade-off), lambda, iterations."""

    weights: str
    lam: float
    iterations: int = 300


def default_settings(operator: Operator, catalogue: dict[str, float]) -> VbleSettings:
    """Per-task defaults (see models/vble/README.md for how they were chosen).

    ``catalogue`` maps shipped autoencoder names to their alpha; the strong
    prior is the lowest-rate one, the mild prior the highest.
    """
    if not catalogue:
        raise RestoreError("no shipped compressive autoencoder weights (cae-*) found")
    mild = max(catalogue, key=catalogue.get)
    strong = min(catalogue, key=catalogue.get)
    sigma_255 = operator.sigma * 255
    # Noise-free lambdas are tuned against the data weight 1 / SIGMA_FLOOR^2; with noise the data term weighs
    # 1 / sigma^2, and lambda keeps its ratio to it (noisy inpainting: benchmarks/results/vble_tune_campaign1_noisy_inpaint.md).
    per_data_weight = (SIGMA_FLOOR / max(operator.sigma, SIGMA_FLOOR)) ** 2
    task = task_of(operator)  # by the operator's type; other operators get the deblurring defaults
    if task == "inpaint":
        # Mild prior, lambda 700 noise-free: best of 0.5..10000 x both autoencoders on BSDS500 val
        # (benchmarks/results/vble_tune_campaign1.md); 27 at sigma 2.55, the best of 5 / 27 / 100 / 700 there.
        return VbleSettings(mild, lam=700.0 * per_data_weight, iterations=400)
    if task == "sr":
        factor = round(1 / operator.scale)
        # x2: mild prior, lambda 100: best of 1..2000 on BSDS500 val (benchmarks/results/vble_tune_campaign1_sr_x2.md).
        # x4: strong prior, lambda 3 (tuned for the earlier autoencoders; vble_tune_campaign1_sr_x4.md finds 50).
        return VbleSettings(mild, lam=100.0 * per_data_weight) if factor <= 2 else VbleSettings(strong, lam=3.0)
    if task == "denoise":
        return VbleSettings(strong if sigma_255 >= 15 else mild, lam=1.0)
    # sigma < 5: mild prior, lambda 1.5: best of 0.25..8 x both autoencoders for Gaussian 1 and 2 blur on
    # BSDS500 val (benchmarks/results/vble_tune_campaign1.md); sigma >= 5 (strong prior): 0.7, not re-tuned.
    return VbleSettings(mild, lam=1.5) if sigma_255 < 5 else VbleSettings(strong, lam=0.7)


def initial_image(y: torch.Tensor, operator: Operator) -> torch.Tensor:
    """x_init: y for same-size operators, bicubic for SR, holes filled for inpainting."""
    if isinstance(operator, Inpaint):
        return operator.fill(y)
    factor = 1.0 / operator.scale
    if abs(factor - 1) > 1e-6:
        return F.interpolate(y, scale_factor=round(factor), mode="bicubic", align_corners=False)
    return y


def shipped_autoencoders(folder: Path) -> dict[str, float]:
    """{weights name: alpha} of the shipped compressive autoencoders."""
    return {name: float(card["alpha"]) for name, card in shipped("vble", folder).items()}


def frozen_net(cls: type[torch.nn.Module], name: str, folder: Path, device: torch.device) -> torch.nn.Module:
    """Shipped weights ``name`` (verified) in a ``cls(CaeConfig(...))``, frozen, in eval mode on ``device``."""
    return load_net(name, lambda config: cls(CaeConfig(**config)), folder, device)


def uniform_from(noise: NoiseSource, like: torch.Tensor, stride: int) -> torch.Tensor:
    """U(-1/2, 1/2) values shaped like ``like``, drawn through ``noise`` (normal -> its CDF)."""
    z = noise.randn(like.shape, stride=stride, device=like.device, dtype=torch.float32)
    return (torch.special.ndtr(z) - 0.5).to(like.dtype)


@dataclass
class Posterior:
    """The variational parameters: box centres and log widths for z and h, plus what the loop records."""

    zbar: torch.Tensor
    hbar: torch.Tensor
    log_az: torch.Tensor
    log_ah: torch.Tensor
    size: tuple[int, int]
    gray: bool
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # more variational parameters (VBLE-xz's b)
    nets: dict[str, torch.nn.Module] = field(default_factory=dict)  # more frozen networks (its variance decoder)
    losses: list[float] = field(default_factory=list)

    def parameters(self) -> list[torch.Tensor]:
        return [self.zbar, self.hbar, self.log_az, self.log_ah, *self.extra.values()]

    def widths(self) -> tuple[torch.Tensor, torch.Tensor]:
        """a_z, a_h = exp(clamp(theta, log 1.5e-5, log 20))."""
        return self.log_az.clamp(LOG_A_MIN, LOG_A_MAX).exp(), self.log_ah.clamp(LOG_A_MIN, LOG_A_MAX).exp()


@dataclass(frozen=True)
class VbleOptions:
    samples: int = option(100, "posterior samples drawn for the MMSE image and the std map (0: only D(zbar))", low=0)
    keep_samples: int = option(0, "how many of them to return (and write beside the output)", low=0)
    sample_batch: int = option(10, "samples decoded per pass", low=1)
    lam: float | None = option(None, "lambda, the weight of the prior (default per task)", above=0)
    iterations: int | None = option(None, "optimisation steps (default per task: 300, 400 for inpainting)", low=1)
    lr: float = option(0.1, "Adam learning rate on zbar, hbar and the log box widths", above=0)
    weights: str | None = option(None, "autoencoder weights name, e.g. cae-a0483 (default per task)")
    weights_dir: Path | None = option(None, "folder of the shipped weights (default: the package's)")

    def __post_init__(self) -> None:
        if self.keep_samples > self.samples:
            raise RestoreError(f"cannot keep {self.keep_samples} samples out of {self.samples} drawn")


@register("vble")
class VbleRestorer(Restorer):
    """Posterior sampling in a compressive autoencoder's latent space.

    Options (``VbleOptions``):
        samples: posterior samples drawn for the MMSE image and the std map (0: only D(zbar)).
        keep_samples: how many of them to return in ``Restoration.samples``.
        sample_batch: samples decoded per pass.
        lam: lambda (default per task).
        iterations: optimisation steps (default per task: 300, 400 for inpainting).
        lr: Adam learning rate on zbar, hbar and the log box widths.
        weights: autoencoder weights name (default per task).
        weights_dir: where the shipped weights live.
    """

    name: ClassVar[str] = "vble"
    operators: ClassVar[tuple[type[Operator], ...]] = (Operator,)  # any linear operator with an adjoint
    channels: ClassVar[tuple[int, ...] | None] = (1, 3)
    description: ClassVar[str] = "VBLE posterior sampler in a compressive autoencoder's latent (MMSE + std map)"
    half_precision = {  # benchmarks/studies/precision_safety.py measures them
        "bf16": "small loss: -0.05 dB deblur on a 96 px crop, 60 iterations "
                "(benchmarks/results/precision_safety.md)",
        "fp16": "unsafe: NaN or inf under fp16 autocast, redone in fp32 by the pipeline, so no gain "
                "(benchmarks/results/precision_safety.md)",
    }
    stochastic: ClassVar[bool] = True
    outputs: ClassVar[tuple[str, ...]] = ("image", "std", "samples")
    halo = 64  # the decoder's reach; tiles are blended over the overlap as well
    tile_multiple = MULTIPLE

    Options = VbleOptions

    def setup(self) -> None:
        o = self.options
        self.samples, self.keep_samples, self.sample_batch = o.samples, o.keep_samples, o.sample_batch
        self.lam, self.iterations, self.lr, self.weights = o.lam, o.iterations, o.lr, o.weights
        self.weights_dir = o.weights_dir or WEIGHTS_DIR
        self._nets: dict[str, CompressiveAutoencoder] = {}

    def to(self, device: str | torch.device) -> "VbleRestorer":
        """Run on ``device``; autoencoders are moved there on first use."""
        if torch.device(device) != self.device:
            self.device = torch.device(device)
            self._nets = {}
        return self

    def settings(self, operator: Operator) -> VbleSettings:
        """The settings this call runs with: per-task defaults overridden by the constructor's arguments."""
        base = default_settings(operator, shipped_autoencoders(self.weights_dir))
        return VbleSettings(self.weights or base.weights, self.lam or base.lam, self.iterations or base.iterations)

    def autoencoder(self, name: str) -> CompressiveAutoencoder:
        """The frozen autoencoder ``name`` on this restorer's device."""
        if name not in self._nets:
            self._nets[name] = frozen_net(CompressiveAutoencoder, name, self.weights_dir, self.device)
        return self._nets[name]

    def _restore(self, y: torch.Tensor, operator: Operator, *, generator, noise: NoiseSource) -> Restoration:
        settings = self.settings(operator)
        cae = self.autoencoder(settings.weights)
        y = y.to(self.device, torch.float32)
        operator = operator.to(self.device)
        with torch.enable_grad():
            post = self._fit(cae, y, operator, settings, noise)
        losses = post.losses
        info = {"weights": settings.weights, "lambda": settings.lam, "iterations": settings.iterations,
                "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4)}
        return self._sample(cae, post, noise, info=info)

    # ---- the variational family -------------------------------------------------
    def _start(self, cae: CompressiveAutoencoder, y: torch.Tensor, operator: Operator, settings: VbleSettings) -> Posterior:
        """Boxes of width 1 around the encoder's latents of x_init."""
        x_init = initial_image(y, operator)
        gray = x_init.shape[1] == 1
        padded, size = pad_to_multiple(x_init.expand(-1, 3, -1, -1) if gray else x_init)
        with torch.no_grad():
            zbar, hbar = cae.encode(padded * self.encode_gain)
        return Posterior(zbar.clone().requires_grad_(True), hbar.clone().requires_grad_(True),
                         torch.zeros_like(zbar, requires_grad=True), torch.zeros_like(hbar, requires_grad=True),
                         size, gray)

    encode_gain: float = 1.0  # VBLE-xz's bitrate modulation gamma; 1 for VBLE

    def _image_draw(self, cae: CompressiveAutoencoder, z: torch.Tensor, post: Posterior, noise: NoiseSource,
                    repeat: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """An image of the posterior given latent draws z, and its KL term per pixel (0: x = D(z) exactly)."""
        return self._decoded(cae, z, post), z.new_zeros(())

    def _decoded(self, cae: CompressiveAutoencoder, z: torch.Tensor, post: Posterior) -> torch.Tensor:
        h, w = post.size
        x = cae.decode(z)[..., :h, :w] / self.encode_gain
        return x.mean(dim=1, keepdim=True) if post.gray else x

    # ---- fitting and sampling -----------------------------------------------------
    def _fit(self, cae: CompressiveAutoencoder, y: torch.Tensor, operator: Operator, settings: VbleSettings,
             noise: NoiseSource) -> Posterior:
        """Minimise the negative ELBO, one posterior draw per step."""
        post = self._start(cae, y, operator, settings)
        params = post.parameters()
        opt = torch.optim.Adam(params, lr=self.lr)
        pixels = post.size[0] * post.size[1]
        weight = data_weight(operator, y)
        for _ in range(settings.iterations):
            a_z, a_h = post.widths()
            z = post.zbar + a_z * uniform_from(noise, post.zbar, 16)
            hh = post.hbar + a_h * uniform_from(noise, post.hbar, 64)
            x, kl_x = self._image_draw(cae, z, post, noise)
            data = (weight * (operator(x.clamp(-0.1, 1.1)) - y) ** 2).sum() / (2 * pixels)
            bits_z, bits_h = cae.bits(z, hh)
            kl_z = ((bits_z + bits_h).sum() * math.log(2) - a_z.log().sum() - a_h.log().sum()) / pixels
            loss = data + settings.lam * (kl_z + kl_x)
            post.losses.append(loss.item())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 20.0)
            opt.step()
        return post

    @torch.no_grad()
    def _sample(self, cae: CompressiveAutoencoder, post: Posterior, noise: NoiseSource, info: dict) -> Restoration:
        """The latent MMSE D(zbar), then posterior samples: their mean, std and the first few kept."""
        latent_mmse = self._decoded(cae, post.zbar, post)
        if self.samples == 0:
            return Restoration(image=latent_mmse.cpu(), info=info)
        a_z, _ = post.widths()
        b = post.zbar.shape[0]
        total = torch.zeros_like(latent_mmse, dtype=torch.float64)
        total_sq = torch.zeros_like(total)
        kept = []
        for start in range(0, self.samples, self.sample_batch):
            n = min(self.sample_batch, self.samples - start)
            # Draw s of image i sits at i * n + s: the latents repeated n times.
            draws = torch.stack([uniform_from(noise, post.zbar, 16) for _ in range(n)], dim=1).flatten(0, 1)
            z = post.zbar.repeat_interleave(n, dim=0) + a_z.repeat_interleave(n, dim=0) * draws
            x, _ = self._image_draw(cae, z, post, noise, repeat=n)
            x = x.view(b, n, *latent_mmse.shape[1:])
            total += x.sum(1).double()
            total_sq += (x.double() ** 2).sum(1)
            if len(kept) < self.keep_samples:
                kept.extend(x.unbind(1)[: self.keep_samples - len(kept)])
        mean = total / self.samples
        std = (total_sq / self.samples - mean**2).clamp_min(0).sqrt()
        samples = torch.stack(kept).cpu() if kept else None
        return Restoration(image=mean.float().cpu(), std=std.float().cpu(), samples=samples,
                           info={**info, "samples": self.samples})


def data_weight(operator: Operator, y: torch.Tensor) -> torch.Tensor:
    """1 / noise variance per measurement: sigma^2, plus gain * y for Poisson-Gaussian sensor noise."""
    variance = y.new_full((), max(operator.sigma, SIGMA_FLOOR) ** 2)
    gain = getattr(operator.noise, "gain", None)
    if gain is not None:
        # The signal level is unknown; the measurement is its plug-in estimate.
        variance = variance + gain * y.clamp_min(0)
    return 1.0 / variance
