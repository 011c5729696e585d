"""Tests for restore.metrics: PSNR, SSIM, luma and LPIPS conventions."""
from __future__ import annotations

import math

import pytest
import torch
from skimage import data as skdata

from restore import metrics
from restore.errors import RestoreError


def _camera() -> torch.Tensor:
    img = torch.from_numpy(skdata.camera()[128:224, 128:224].copy()).float() / 255.0
    return img[None, None]


def _astronaut() -> torch.Tensor:
    img = torch.from_numpy(skdata.astronaut()[64:128, 192:256].copy()).float() / 255.0
    return img.permute(2, 0, 1)[None]


def test_psnr_matches_hand_computed_value() -> None:
    x = torch.zeros(2, 1, 4, 4)
    y = torch.zeros(2, 1, 4, 4)
    y[0, 0, 1, 2] = 0.4  # MSE = 0.16 / 16 = 0.01 -> 20 dB
    y[1] = 0.1  # MSE = 0.01 -> 20 dB
    y[1, 0, 0, 0] = 0.5  # MSE = (15 * 0.01 + 0.25) / 16 = 0.025
    per_image = metrics.psnr(x, y, reduction="none")
    assert per_image.dtype == torch.float64 and per_image.shape == (2,)
    assert per_image[0].item() == pytest.approx(20.0, abs=1e-5)
    assert per_image[1].item() == pytest.approx(10 * math.log10(1 / 0.025), abs=1e-5)
    assert metrics.psnr(x, y).item() == pytest.approx(per_image.mean().item())
    assert metrics.psnr(x * 255, y * 255, data_range=255).item() == pytest.approx(metrics.psnr(x, y).item(), abs=1e-5)


def test_psnr_identical_is_inf_and_crop_removes_borders() -> None:
    x = _camera()
    assert metrics.psnr(x, x.clone()).item() == math.inf
    y = x.clone()
    y[..., 0, :] = 0.0  # damage only the first row
    assert math.isfinite(metrics.psnr(x, y).item())
    assert metrics.psnr(x, y, crop=1).item() == math.inf


def test_ssim_identical_is_one_and_noise_lowers_it() -> None:
    x = _astronaut()
    assert metrics.ssim(x, x.clone()).item() == pytest.approx(1.0, abs=1e-6)
    noisy = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    # Out-of-range values are clipped for piq rather than rejected.
    value = metrics.ssim(noisy, x).item()
    assert 0.0 < value < 0.9


def test_to_y_conventions() -> None:
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    assert metrics.to_y(white).shape == (1, 1, 2, 2)
    torch.testing.assert_close(metrics.to_y(white), torch.full((1, 1, 2, 2), 235 / 255), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(metrics.to_y(black), torch.full((1, 1, 2, 2), 16 / 255), rtol=1e-4, atol=1e-5)
    with pytest.raises(RestoreError, match="B x 3 x H x W"):
        metrics.to_y(torch.ones(1, 1, 2, 2))


def test_bad_inputs_are_refused() -> None:
    x = _camera()
    with pytest.raises(RestoreError, match="same shape"):
        metrics.psnr(x, x[..., :-1])
    with pytest.raises(RestoreError, match="crop"):
        metrics.psnr(x, x, crop=x.shape[-1])
    with pytest.raises(RestoreError, match="reduction"):
        metrics.ssim(x, x, reduction="sum")
    with pytest.raises(RestoreError, match="B x C x H x W"):
        metrics.psnr(x[0], x[0])


def test_lpips_works_or_is_unavailable() -> None:
    x = _astronaut()
    try:
        same = metrics.lpips_distance(x, x.clone())
    except metrics.MetricUnavailable as exc:
        assert "lpips" not in metrics.available_metrics()
        pytest.skip(f"LPIPS unavailable here: {exc}")
    assert "lpips" in metrics.available_metrics()
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    assert metrics.lpips_distance(x, x.flip(-1)).item() > 0.01


def test_available_metrics_always_lists_psnr_and_ssim() -> None:
    assert {"psnr", "ssim"} <= set(metrics.available_metrics())
