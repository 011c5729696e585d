"""How a benchmark scores an output, per task, with the conventions written down (channel, crop, range).

The conventions follow each task's literature, so that rows are comparable
with published tables: denoising and the inverse problems score every channel
over the whole image; super-resolution scores the Y channel (ITU-R BT.601,
16-235) with ``scale`` border pixels cropped, and RGB with the same crop.
"""
from __future__ import annotations

import torch

from restore.bench.cases import Case, Setting
from restore.metrics import MetricUnavailable, lpips_distance, psnr, ssim, to_y
from restore.operators.denoise import Denoise

PROTOCOL = {
    "data range": "images in [0, 1] (8-bit values / 255); outputs clipped to [0, 1], not quantised",
    "denoise": "PSNR (10 log10(1/MSE)) and SSIM over all channels and the whole image, no border crop",
    "sr": "PSNR and SSIM on the Y channel (BT.601, 16-235) with a border of `scale` pixels cropped; "
    "PSNR RGB with the same crop",
    "deblur": "PSNR and SSIM over all channels and the whole image, no border crop",
    "inpaint": "PSNR and SSIM over all channels and the whole image (known pixels included), no border crop",
    "ssim": "restore.metrics.ssim: Gaussian window 11, sigma 1.5, per channel, no downsampling",
    "lpips": "AlexNet LPIPS on RGB in [-1, 1] where its backbone is installed (gray replicated), else n/a",
    "mean": "mean over images of the per-image value",
}


def _lpips(out: torch.Tensor, ref: torch.Tensor) -> float | None:
    if out.shape[1] == 1:
        out, ref = out.expand(-1, 3, -1, -1), ref.expand(-1, 3, -1, -1)
    try:
        return float(lpips_distance(out, ref))
    except MetricUnavailable:
        return None


def score(setting: Setting, out: torch.Tensor, clean: torch.Tensor) -> dict:
    """PSNR, SSIM (the task's channel and crop), PSNR RGB for SR, LPIPS where available."""
    out = out.clamp(0, 1)
    if setting.task != "sr":
        return {"psnr": float(psnr(out, clean)), "ssim": float(ssim(out, clean)), "lpips": _lpips(out, clean)}
    crop = setting.scale
    y_out, y_ref = (to_y(out), to_y(clean)) if out.shape[1] == 3 else (out, clean)
    return {"psnr": float(psnr(y_out, y_ref, crop=crop)), "ssim": float(ssim(y_out, y_ref, crop=crop)),
            "psnr_rgb": float(psnr(out, clean, crop=crop)), "lpips": _lpips(out, clean)}


def input_psnr(case: Case) -> float | None:
    """The degraded input's PSNR, the row every gain is measured from (None when its size differs: SR)."""
    if case.degraded.shape != case.clean.shape:
        return None
    return float(psnr(case.degraded if isinstance(case.operator, Denoise) else case.degraded.clamp(0, 1), case.clean))
