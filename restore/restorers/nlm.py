"""Non-local means (Buades et al. 2005) through OpenCV's fast implementation.

A classical, training-free denoising baseline. OpenCV's NLM works on 8-bit
images only, so the measurement is **quantised to uint8** first: clipped to
[0, 1], scaled by 255 and rounded to nearest. With float (unclipped) noise this
clipping discards part of the noise in very dark and very bright regions and
biases them slightly; the rounding adds a uniform error of std 0.29 / 255,
negligible next to the noise levels NLM is used for. The output is the 8-bit
result divided by 255, as a float tensor.

Parameters follow the noise level sigma (0-255 units): the filter strength is
``h = c(sigma) * sigma`` with ``c`` tuned on Set12 (gray) and BSDS500 val
images outside CBSD68 (color), 5 x 5 patches and a 21 x 21 search window.
Color images are denoised with one patch distance over the three RGB channels
(``cv2.fastNlMeansDenoising`` on the 3-channel image), which measured 0.8-1.1 dB
above ``cv2.fastNlMeansDenoisingColored`` (Lab, separate luma/chroma passes);
``color="lab"`` selects the latter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
import torch

from restore.errors import RestoreError
from restore.io import from_numpy_image, to_numpy_image
from restore.operators.base import Operator
from restore.operators.denoise import Denoise
from restore.options import option
from restore.restorers.base import Restoration, Restorer, register

TEMPLATE_WINDOW = 5
SEARCH_WINDOW = 21
COLOR_MODES = ("rgb", "lab")
# Lab mode strengths per unit sigma (tuned like h_for_sigma): luma, then chroma,
# which tolerates stronger smoothing.
_LAB_C_LUMA, _LAB_C_CHROMA = 0.7, 1.0


def h_for_sigma(sigma_255: float, channels: int) -> float:
    """OpenCV filter strength h for a noise std ``sigma_255`` (0-255 units).

    ``h = c * sigma``, with ``c`` falling slowly as sigma grows (the best c was
    about 1.05 / 0.97 / 0.85 for gray and 0.90 / 0.85 / 0.77 for color at sigma
    15 / 25 / 50). PSNR fell steeply for c below about 0.7 in tuning, so the
    floor stops the rule extrapolating into that region beyond sigma 50.

    Args:
        sigma_255: noise standard deviation in 0-255 units, > 0.
        channels: 1 for gray, 3 for color (a joint RGB distance averages the
            noise over three channels, so it needs a smaller h).
    """
    if channels == 1:
        c = max(1.1 - 0.005 * sigma_255, 0.75)
    else:
        c = max(0.95 - 0.0035 * sigma_255, 0.7)
    return c * sigma_255


@dataclass(frozen=True)
class NlmOptions:
    color: str = option("rgb", "colour images: joint R, G, B patch distance, or OpenCV's Lab variant",
                        choices=COLOR_MODES)


@register("nlm")
class NLMRestorer(Restorer):
    """OpenCV non-local means for Gaussian denoising of gray and RGB images.

    NLM always runs on the CPU (``device`` only says where results go back to);
    its one option, ``color``, picks the patch distance of colour images.

    Example:
        >>> nlm = NLMRestorer()
        >>> out = nlm.restore(y, Denoise(sigma=25 / 255)).image  # doctest: +SKIP
    """

    name: ClassVar[str] = "nlm"
    operators: ClassVar[tuple[type[Operator], ...]] = (Denoise,)
    channels: ClassVar[tuple[int, ...] | None] = (1, 3)
    description: ClassVar[str] = "non-local means (OpenCV, 8-bit), a classical baseline"
    half_precision = {  # benchmarks/studies/precision_safety.py measures them
        "bf16": "no effect: OpenCV computes it in 8-bit, outside torch",
        "fp16": "no effect: OpenCV computes it in 8-bit, outside torch",
    }
    halo: int = SEARCH_WINDOW // 2 + TEMPLATE_WINDOW // 2

    Options = NlmOptions

    def setup(self) -> None:
        self.color = self.options.color

    def _restore(
        self, y: torch.Tensor, operator: Operator, *, generator: torch.Generator | None
    ) -> Restoration:
        sigma_255 = float(operator.sigma) * 255.0
        if sigma_255 <= 0:
            raise RestoreError(
                "nlm needs the noise level: pass an operator with sigma > 0 "
                "(e.g. Denoise(sigma=25 / 255)); the CLI estimates it when not given"
            )
        lab = y.shape[1] == 3 and self.color == "lab"
        h = _LAB_C_LUMA * sigma_255 if lab else h_for_sigma(sigma_255, y.shape[1])
        # OpenCV works one 8-bit image at a time.
        out = torch.cat([self._denoise_one(y[i : i + 1], h) for i in range(y.shape[0])])
        return Restoration(image=out.to(y.device, y.dtype), info={"sigma": sigma_255, "h": h})

    def _denoise_one(self, y: torch.Tensor, h: float) -> torch.Tensor:
        """Denoise one 1 x C x H x W image with filter strength ``h``."""
        if not torch.isfinite(y).all():
            raise RestoreError("y contains NaN or inf values; nlm needs a finite image")
        u8 = to_numpy_image(y, np.uint8)  # clip to [0, 1], x255, round (see module docstring)
        if u8.ndim == 3 and self.color == "lab":
            h_color = h * _LAB_C_CHROMA / _LAB_C_LUMA
            bgr = np.ascontiguousarray(u8[:, :, ::-1])  # OpenCV's Lab conversion expects BGR
            den = cv2.fastNlMeansDenoisingColored(bgr, None, h, h_color, TEMPLATE_WINDOW, SEARCH_WINDOW)
            den = np.ascontiguousarray(den[:, :, ::-1])
        else:
            den = cv2.fastNlMeansDenoising(u8, None, h, TEMPLATE_WINDOW, SEARCH_WINDOW)
        return from_numpy_image(den)
