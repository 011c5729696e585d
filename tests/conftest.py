"""Shared fixtures: small real images that ship with scikit-image, and the shared data sets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _tensor(array: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(array.astype(np.float32) / 255.0)
    return x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]


@pytest.fixture(scope="session")
def camera() -> torch.Tensor:
    """A 96 x 128 gray crop of scikit-image's cameraman, 1 x 1 x H x W in [0, 1]."""
    from skimage import data

    return _tensor(data.camera()[80:176, 200:328])


@pytest.fixture(scope="session")
def astronaut() -> torch.Tensor:
    """An 80 x 96 RGB crop of scikit-image's astronaut, 1 x 3 x H x W in [0, 1]."""
    from skimage import data

    return _tensor(data.astronaut()[20:100, 140:236])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark data sets beside the checkout; tests that need them skip without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA} (only present on the project's machines)")
    return SHARED_DATA


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB for [0, 1] images."""
    return float(10 * torch.log10(1.0 / ((x.double() - y.double()) ** 2).mean()))
