"""Residual diffusion (RDDM, Liu et al. 2024): per-task conditional models and their few-step sampler."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from restore.diffusion.conditioning import colour_to_gray, degraded_start, gray_for_colour_net, noise_map
from restore.diffusion.residual import ResidualSchedule, sample
from restore.errors import RestoreError
from restore.nets.unet import UNet, UNetConfig, pad_to
from restore.noise_field import NoiseSource
from restore.operators.base import Operator
from restore.operators.blur import Blur
from restore.operators.denoise import Denoise
from restore.operators.downsample import Downsample
from restore.options import option
from restore.restorers.base import Restoration, Restorer, register
from restore.weights import WEIGHTS_DIR, load_net, shipped

# Sampling steps per task when --steps is not given: the fewest that scored best on
# BSDS500 val crops (benchmarks/results/rddm_steps.md). More steps drift: each step
# feeds the model its own estimate, which it was never trained on.
DEFAULT_STEPS = 1
# The operator types the nets were trained on -> the "task" of their manifest cards.
NET_TASKS: dict[type[Operator], str] = {Denoise: "denoise", Blur: "deblur", Downsample: "sr"}


def shipped_unets(restorer: str, folder: Path | None = None) -> dict[tuple[str, int], str]:
    """{(task, scale): weights name} of the shipped nets of ``restorer`` (scale 1 unless SR)."""
    return {(card["task"], int(card.get("scale", 1))): name for name, card in shipped(restorer, folder).items()}


def frozen_unet(name: str, folder: Path, device: torch.device) -> UNet:
    """Shipped U-Net ``name`` (verified), frozen, channels-last, in eval mode on ``device``."""
    return load_net(name, lambda config: UNet(UNetConfig.from_dict(config)), folder, device, channels_last=True)


def net_task(operator: Operator) -> str:
    """The manifest task of the net for ``operator``'s type (the most derived type wins)."""
    for kind in type(operator).__mro__:
        if kind in NET_TASKS:
            return NET_TASKS[kind]
    raise RestoreError(f"residual diffusion inverts {', '.join(t.__name__ for t in NET_TASKS)}; got {operator!r}")


def task_key(operator: Operator, restorer: str, shipped_nets: dict[tuple[str, int], str]) -> tuple[str, int]:
    """The (task, scale) of the net for ``operator``, or a clear error on what exists."""
    task = net_task(operator)
    if isinstance(operator, Downsample):
        if operator.filter != "bicubic":
            raise RestoreError(f"model '{restorer}' was trained on bicubic downsampling; got {operator!r}")
        key = (task, operator.factor)
        if key not in shipped_nets:
            scales = sorted(s for t, s in shipped_nets if t == task)
            raise RestoreError(f"model '{restorer}' has no x{operator.factor} weights; "
                               f"shipped scales: {', '.join(f'x{s}' for s in scales) or 'none'}")
        return key
    key = (task, 1)
    if key not in shipped_nets:
        raise RestoreError(f"model '{restorer}' has no weights for {type(operator).__name__} operators")
    return key


@dataclass(frozen=True)
class RddmOptions:
    steps: int | None = option(None, "sampler steps = network evaluations (default per task)", low=1, high=1000)
    weights_dir: Path | None = option(None, "folder of the shipped weights (default: the package's)")


@register("rddm")
class RddmRestorer(Restorer):
    """Residual denoising diffusion: a U-Net fed the degraded image predicts the residual
    degraded - clean; a deterministic sampler starts at I_in + bbar_T z.

    One net per task: SR x4 (bicubic), Gaussian denoising (sigma 0-55/255, the
    noise level as an input channel), Gaussian deblurring (blind over blur std
    0.5-3.5 px, noise 0-10/255). Gray images go through the colour nets as
    three equal channels, told the noise level that matches their luminance
    noise (``gray_for_colour_net``).

    Options (``RddmOptions``): ``steps`` (default per task, DEFAULT_STEPS), ``weights_dir``.
    """

    name = "rddm"
    operators = (Denoise, Blur, Downsample)
    channels = (1, 3)
    description = "residual denoising diffusion (RDDM): per-task conditional U-Nets, few-step deterministic sampler"
    half_precision = {  # benchmarks/studies/precision_safety.py measures them
        "bf16": "safe: -0.009 dB denoise sigma 25, -0.002 dB SR x4 on a 96 px crop "
                "(benchmarks/results/precision_safety.md)",
        "fp16": "untested: not measured on a GPU; CPU autocast (few operations in fp16 there): +0.000 dB on a 96 "
                "px crop (benchmarks/results/precision_safety.md)",
    }
    stochastic = True
    outputs = ("image",)
    halo = 32
    tile_multiple = 8

    Options = RddmOptions

    def setup(self) -> None:
        self.steps = getattr(self.options, "steps", None)  # onestep-sr, a subclass, declares none
        self.weights_dir = self.options.weights_dir or WEIGHTS_DIR
        # Read once: check() and net() run for every tile of every image.
        self.shipped = shipped_unets(self.name, self.weights_dir)
        self._nets: dict[str, UNet] = {}

    def to(self, device: str | torch.device) -> "RddmRestorer":
        if torch.device(device) != self.device:
            self.device, self._nets = torch.device(device), {}
        return self

    def net(self, operator: Operator) -> UNet:
        name = self.shipped[task_key(operator, self.name, self.shipped)]
        if name not in self._nets:
            self._nets[name] = frozen_unet(name, self.weights_dir, self.device)
        return self._nets[name]

    def check(self, y: torch.Tensor, operator: Operator) -> None:
        super().check(y, operator)
        task_key(operator, self.name, self.shipped)

    def _restore(self, y: torch.Tensor, operator: Operator, *, generator, noise: NoiseSource) -> Restoration:
        net = self.net(operator)
        steps = self.steps or DEFAULT_STEPS
        with torch.inference_mode():
            x = self.run(net, y, operator, noise, steps)
        return Restoration(image=x, info={"steps": steps, "evaluations": steps})

    def run(self, net: UNet, y: torch.Tensor, operator: Operator, noise: NoiseSource, steps: int) -> torch.Tensor:
        """Sample on y (B x C x H x W in [0, 1]); returns the estimate in [0, 1], C channels."""
        channels = y.shape[1]
        y = y.to(self.device, torch.float32)
        sigma = torch.as_tensor(operator.sigma, dtype=torch.float32, device=self.device)
        if channels == 1:
            y, k = gray_for_colour_net(y, sigma, net_task(operator))
            sigma = sigma.reshape(-1, 1, 1, 1) * 3**0.5 * k
        scale = round(1 / operator.scale)
        x_in, (h, w) = pad_to(degraded_start(y, scale), net.multiple)
        x_in = x_in.contiguous(memory_format=torch.channels_last)
        sigma = noise_map(x_in, sigma)
        z = noise.randn(x_in.shape, device=self.device)
        schedule = ResidualSchedule.make(sum_scale=net.config.extra.get("sum_scale", 0.01))
        x0 = sample(net, schedule, x_in, sigma, z, steps)[..., :h, :w]
        x = (x0 + 1) / 2
        return (colour_to_gray(x, k) if channels == 1 else x).clamp(0, 1)
