"""The campaign's validation images: BSDS500 val minus the 68 CBSD68 / BSD68 scenes (32 images).

None of them is in a test set we report on (BSD68, CBSD68, Kodak, Set5/12/14,
BSD100, Urban100), and none is trained on (training uses BSDS500 train + test
and Train400).
"""
from __future__ import annotations

from pathlib import Path

import torch

from restore.io import list_images, read_image
from restore.training.data import cbsd68_ids

VAL_FOLDER = Path("BSDS500") / "val"


def validation_paths(data_root: Path) -> list[Path]:
    """The 32 validation images under ``data_root``, sorted; a clear error when the data is absent."""
    folder = data_root / VAL_FOLDER
    if not folder.is_dir():
        raise SystemExit(f"validation images not found: {folder} (pass --data pointing at the shared data folder)")
    excluded = cbsd68_ids()
    if not excluded:
        raise SystemExit("the CBSD68 scene list is needed to keep test scenes out of validation, and was not found")
    return [p for p in list_images(folder) if p.stem not in excluded]


def centre_crop(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The central h x w window of a ... x H x W tensor (the whole side where it is shorter)."""
    hh, ww = x.shape[-2:]
    top, left = max(0, (hh - h) // 2), max(0, (ww - w) // 2)
    return x[..., top : top + h, left : left + w]


def gray(x: torch.Tensor) -> torch.Tensor:
    """1 x 3 x H x W RGB -> 1 x 1 x H x W with the weights the training data uses."""
    if x.shape[1] == 1:
        return x
    return (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)


def validation_crops(data_root: Path, channels: int, side: int) -> list[torch.Tensor]:
    """Central ``side`` x ``side`` crops (1 x C x side x side) of the validation images."""
    crops = []
    for path in validation_paths(data_root):
        x = read_image(path).pixels
        crops.append(centre_crop(gray(x) if channels == 1 else x, side, side).contiguous())
    return crops
