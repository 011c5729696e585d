"""Bicubic interpolation: the classical super-resolution baseline every SR paper reports."""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.operators.base import Operator
from restore.operators.decimate import Decimate
from restore.operators.downsample import Downsample
from restore.operators.satellite import SensorOperator
from restore.restorers.base import Restoration, Restorer, register


@register("bicubic")
class BicubicRestorer(Restorer):
    """Upsample by the operator's factor with Keys' bicubic kernel (a = -0.75, as torch and OpenCV).

    No model of the degradation beyond its scale: the reference row of SR tables.

    Takes no options.
    """

    name: ClassVar[str] = "bicubic"
    # Any operator that shrinks by an integer factor (bicubic, box, a sensor's decimation): it only upsamples.
    operators: ClassVar[tuple[type[Operator], ...]] = (Downsample, Decimate, SensorOperator)
    channels: ClassVar[tuple[int, ...] | None] = None
    description: ClassVar[str] = "bicubic interpolation (no learning), the SR baseline"
    half_precision = {  # benchmarks/studies/precision_safety.py measures them
        "bf16": "safe: +0.000 dB on a 96 px crop, x4 (benchmarks/results/precision_safety.md)",
        "fp16": "safe: +0.000 dB on a 96 px crop, x4, CPU autocast (benchmarks/results/precision_safety.md)",
    }
    halo: int = 2  # the cubic's support: two input pixels on each side

    def _restore(self, y: torch.Tensor, operator: Operator, *, generator: torch.Generator | None) -> Restoration:
        factor = 1.0 / operator.scale
        if abs(factor - round(factor)) > 1e-6 or round(factor) < 2:
            raise RestoreError(f"bicubic needs an integer upscaling factor >= 2, got {factor:g}")
        x = F.interpolate(y.to(self.device, torch.float32), scale_factor=round(factor), mode="bicubic",
                          align_corners=False)
        return Restoration(image=x.to(y.device), info={"scale": round(factor)})
