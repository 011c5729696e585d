"""Tests for the OpenCV non-local-means restorer (``nlm``)."""
from __future__ import annotations

import pytest
import torch
from skimage import data as skdata

import restore
from restore.errors import RestoreError
from restore.metrics import psnr
from restore.operators import Blur, Denoise, gaussian_kernel
from restore.restorers.nlm import NLMRestorer

SIGMA = 25 / 255


def _camera() -> torch.Tensor:
    img = torch.from_numpy(skdata.camera()[128:256, 128:256].copy()).float() / 255.0
    return img[None, None]


def _astronaut() -> torch.Tensor:
    img = torch.from_numpy(skdata.astronaut()[32:160, 160:288].copy()).float() / 255.0
    return img.permute(2, 0, 1)[None].contiguous()


@pytest.mark.parametrize("make", [_camera, _astronaut], ids=["gray", "rgb"])
def test_nlm_denoises_real_image(make) -> None:
    x = make()
    op = Denoise(SIGMA)
    y = op.measure(x, torch.Generator().manual_seed(0))
    with pytest.raises(restore.RestoreError, match="has no option 'adapt'; its options: color"):
        restore.load("nlm", adapt=True)  # an undeclared option is refused, not ignored
    result = restore.load("nlm").restore(y, op)
    assert result.image.shape == x.shape and result.image.dtype == x.dtype
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    gain = psnr(result.image, x) - psnr(y, x)
    assert gain > 3.0, f"PSNR gain {gain:.2f} dB"
    assert result.info["sigma"] == pytest.approx(25.0)
    assert result.info["h"] > 0


def test_nlm_batch_is_processed_image_by_image() -> None:
    x = _camera()
    op = Denoise(SIGMA)
    y = op.measure(torch.cat([x, x.flip(-1)]), torch.Generator().manual_seed(1))
    nlm = NLMRestorer()
    both = nlm.restore(y, op).image
    assert both.shape == (2, 1, 128, 128)
    assert torch.equal(both[1:], nlm.restore(y[1:], op).image)


def test_nlm_halo_and_registry() -> None:
    assert NLMRestorer.halo == 21 // 2 + 5 // 2
    assert "nlm" in restore.names_for_task("denoise")


def test_nlm_refuses_sigma_zero() -> None:
    with pytest.raises(RestoreError, match="sigma"):
        NLMRestorer().restore(_camera(), Denoise(0.0))


def test_nlm_refuses_other_tasks() -> None:
    with pytest.raises(RestoreError, match="deblur"):
        NLMRestorer().restore(_camera(), Blur(gaussian_kernel(1.0), sigma=SIGMA))


def test_nlm_refuses_four_channels() -> None:
    with pytest.raises(RestoreError, match="channels"):
        NLMRestorer().restore(torch.rand(1, 4, 32, 32), Denoise(SIGMA))


def test_nlm_refuses_bad_color_mode_and_nan() -> None:
    with pytest.raises(RestoreError, match="color"):
        NLMRestorer(color="yuv")
    y = _camera().clone()
    y[0, 0, 3, 3] = float("nan")
    with pytest.raises(RestoreError, match="NaN"):
        NLMRestorer().restore(y, Denoise(SIGMA))
