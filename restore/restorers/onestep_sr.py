"""One-step super-resolution distilled from the residual-diffusion teacher (SinSR-style)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from restore.noise_field import NoiseSource
from restore.operators.base import Operator
from restore.operators.downsample import Downsample
from restore.options import option
from restore.restorers.base import Restoration, register
from restore.restorers.rddm import RddmRestorer


@dataclass(frozen=True)
class OneStepOptions:
    weights_dir: Path | None = option(None, "folder of the shipped weights (default: the package's)")


@register("onestep-sr")
class OneStepSr(RddmRestorer):
    """A student net that maps the teacher's start state I_in + bbar_T z to the
    teacher's output in one evaluation (x2 and x4, bicubic degradation).

    Trained by ``restore.training.distill_sr`` (distillation, inverse-consistency
    and ground-truth terms of SinSR) from the RDDM teacher of the same scale.
    """

    name = "onestep-sr"
    operators = (Downsample,)
    description = "one-step super-resolver distilled from the residual-diffusion teacher (SinSR)"
    half_precision = {  # benchmarks/studies/precision_safety.py measures them
        "bf16": "safe: +0.002 dB SR x4 on a 96 px crop (benchmarks/results/precision_safety.md)",
        "fp16": "untested: not measured on a GPU; CPU autocast (few operations in fp16 there): +0.000 dB on a 96 "
                "px crop (benchmarks/results/precision_safety.md)",
    }

    Options = OneStepOptions  # one evaluation by construction: no steps to choose

    def _restore(self, y: torch.Tensor, operator: Operator, *, generator, noise: NoiseSource) -> Restoration:
        net = self.net(operator)
        with torch.inference_mode():
            # One evaluation at t = T is the deterministic sampler with one step.
            x = self.run(net, y, operator, noise, steps=1)
        return Restoration(image=x, info={"evaluations": 1})
