"""The degraded inputs of a benchmark: one setting of a task, applied to a clean image with a fixed seed.

Every degradation is made with the toolkit's own operators, seeded per
(seed, setting, image index), so that any run on any machine sees the same
inputs. Denoising reproduces ``benchmarks/denoise.py`` bit for bit (same seed
rule), so ``restore bench`` and that script agree on the committed tables.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from restore.errors import RestoreError
from restore.operators import Denoise, Downsample, Inpaint, make_operator, random_mask
from restore.operators.base import Operator

TASKS = ("denoise", "sr", "deblur", "inpaint")

# What ``degrade`` does per task, for the protocol written into every report.
DESCRIPTION = {
    "denoise": "y = x + sigma/255 n, n ~ N(0, 1) float32; not clipped, not quantised (the LIDIA paper's protocol)",
    "sr": "the clean image cropped to a multiple of the scale (top-left kept); bicubic Downsample (antialiased, "
          "as MATLAB's imresize), clipped and rounded to 8 bits as a saved image would be; no noise",
    "deblur": "the kernel's blur (restore.operators.Blur, circular boundary) plus Gaussian noise sigma/255, not clipped",
    "inpaint": "each pixel missing (0) with the given probability, the same pixels in every channel; "
               "plus Gaussian noise sigma/255 if a sigma is given",
}
SEED_RULE = ("torch.Generator seeded with sha256('seed/key/index')[:8] (key: the sigma for denoise, the setting "
             "label otherwise; index: the image's position in the sorted dataset); the same input for every method")


@dataclass(frozen=True)
class Setting:
    """One degradation of a task, in the CLI's units (sigma in 0-255)."""

    task: str
    sigma: float = 0.0
    scale: int | None = None
    kernel: str | None = None
    missing: float | None = None

    @property
    def label(self) -> str:
        """How tables name it, e.g. "sigma 25", "x4", "gaussian:2.0, sigma 2.55", "50% missing"."""
        noise = f"sigma {self.sigma:g}"
        if self.task == "denoise":
            return noise
        if self.task == "sr":
            return f"x{self.scale}"
        if self.task == "deblur":
            return f"{self.kernel}, {noise}"
        return f"{self.missing * 100:g}% missing" + (f", {noise}" if self.sigma else "")


def settings_for(task: str, *, sigmas: list[float], scales: list[int], kernel: str | None, missing: list[float]) -> list[Setting]:
    """The settings a bench command asked for, checked."""
    if task not in TASKS:
        raise RestoreError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if any(not 0 <= s <= 255 for s in sigmas):
        raise RestoreError(f"--sigma values must be in [0, 255], got {sigmas}")
    if task == "denoise":
        if not sigmas or any(s <= 0 for s in sigmas):
            raise RestoreError("denoising needs --sigma values > 0, e.g. --sigma 15 25 50")
        return [Setting("denoise", sigma=s) for s in sigmas]
    if task == "sr":
        if sigmas:
            raise RestoreError("the sr benchmark is noise-free (bicubic downsampling, 8-bit input); drop --sigma")
        if any(s not in (2, 3, 4) for s in scales):
            raise RestoreError(f"--scale must be 2, 3 or 4, got {scales}")
        return [Setting("sr", scale=s) for s in scales or [4]]
    if task == "deblur":
        make_operator("deblur", kernel=kernel)  # refuses a bad kernel spec before any work
        return [Setting("deblur", sigma=s, kernel=kernel or "gaussian:1.6") for s in sigmas or [2.55]]
    if any(not 0 < m < 1 for m in missing):
        raise RestoreError(f"--missing fractions must be in (0, 1), got {missing}")
    return [Setting("inpaint", sigma=s, missing=m) for m in missing or [0.5] for s in sigmas or [0.0]]


def seed_for(seed: int, key: str, index: int) -> int:
    """A 63-bit generator seed from (seed, setting key, image index), stable across runs and machines."""
    digest = hashlib.sha256(f"{seed}/{key}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _generator(seed: int, setting: Setting, index: int) -> torch.Generator:
    # Denoising keeps the key "sigma" alone, the rule benchmarks/denoise.py has used for its tables.
    key = f"{setting.sigma:g}" if setting.task == "denoise" else setting.label
    return torch.Generator().manual_seed(seed_for(seed, key, index))


@dataclass
class Case:
    """One benchmark input: the clean reference, the measurement and the operator that made it."""

    clean: torch.Tensor
    degraded: torch.Tensor
    operator: Operator


def degrade(setting: Setting, clean: torch.Tensor, seed: int, index: int) -> Case:
    """The measurement of ``clean`` (1 x C x H x W in [0, 1]) under ``setting``, as ``DESCRIPTION`` says."""
    gen = _generator(seed, setting, index)
    if setting.task == "denoise":
        op = Denoise(setting.sigma / 255)
        return Case(clean, op.measure(clean, gen), op)
    if setting.task == "sr":
        h, w = (s - s % setting.scale for s in clean.shape[-2:])
        hr = clean[..., :h, :w]
        op = Downsample(setting.scale)
        lr = (op.forward(hr).clamp(0, 1) * 255).round() / 255
        return Case(hr, lr, op)
    if setting.task == "deblur":
        op = make_operator("deblur", sigma=setting.sigma / 255, kernel=setting.kernel)
        return Case(clean, op.measure(clean, gen), op)
    mask = random_mask(clean.shape[-2], clean.shape[-1], setting.missing, gen)
    op = Inpaint(mask, sigma=setting.sigma / 255)
    return Case(clean, op.measure(clean, gen), op)
