"""Numbers the papers published, shown as reference rows beside the measured ones (never run here).

Only numbers on the same dataset and protocol are listed; where a method's
paper reports none for a dataset, the report says so and names what the paper
did report (from ``shared/specs``), rather than leaving a silent gap.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """Reference rows for one task on one dataset."""

    source: str
    rows: dict[str, dict[str, float]]  # method -> setting label -> PSNR


# Vaksman, Elad & Milanfar 2020 (LIDIA), tables for BSD68 (gray) and CBSD68 (colour); full 68 images.
_DENOISE = {
    ("bsd68", 1): Published("LIDIA paper, BSD68 gray, 68 images",
                            {"LIDIA": {"sigma 15": 31.62, "sigma 25": 29.11, "sigma 50": 26.16},
                             "DnCNN": {"sigma 25": 29.23}}),
    ("cbsd68", 3): Published("LIDIA paper, CBSD68 colour, 68 images",
                             {"LIDIA": {"sigma 15": 34.03, "sigma 25": 31.31, "sigma 50": 27.99},
                              "CBM3D": {"sigma 15": 33.50, "sigma 25": 30.68, "sigma 50": 27.36}}),
}

# What the other papers report instead, for the note under a table.
ELSEWHERE = {
    "sr": "SinSR reports ImageNet-Test x4 (PSNR 24.70, LPIPS 0.2188, one step) and RDDM no Set5/Set14/BSD100 "
          "table; no published row applies here",
    "deblur": "RED-Diff and VBLE report ImageNet-val / BSD and FFHQ 256 crops, not this protocol; no published row applies",
    "inpaint": "RED-Diff and VBLE report ImageNet-val / BSD and FFHQ 256 crops, not this protocol; no published row applies",
    "denoise": "the LIDIA paper reports BSD68 (gray) and CBSD68 (colour) only",
}


def published_for(task: str, dataset: str, channels: set[int]) -> Published | None:
    """The reference rows for this task, dataset folder name and channel count, if any."""
    if task != "denoise" or len(channels) != 1:
        return None
    name = dataset.lower()
    key = "cbsd68" if "cbsd68" in name else "bsd68" if "bsd68" in name else None
    return _DENOISE.get((key, next(iter(channels)))) if key else None
