"""Blind noise-level estimation on real images."""
from __future__ import annotations

import pytest
import torch

from restore.errors import RestoreError
from restore.operators.noise_level import estimate_sigma


@pytest.mark.parametrize("sigma", [10, 25, 50])
@pytest.mark.parametrize("fixture", ["camera", "astronaut"])
def test_estimate_within_fifteen_percent(request, fixture, sigma):
    x = request.getfixturevalue(fixture)
    y = x + sigma / 255 * torch.randn(x.shape, generator=torch.Generator().manual_seed(sigma))
    assert estimate_sigma(y) * 255 == pytest.approx(sigma, rel=0.15)


def test_too_small_image_is_refused():
    with pytest.raises(RestoreError, match="too small"):
        estimate_sigma(torch.rand(1, 1, 4, 40))
