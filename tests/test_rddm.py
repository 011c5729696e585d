"""Residual diffusion (RDDM), its schedule and sampler, and the one-step distilled super-resolver."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import restore
from restore.cli import app
from restore.diffusion.residual import ResidualSchedule, sample
from restore.errors import RestoreError
from restore.io import read_image
from restore.nets.unet import UNet, UNetConfig, pad_to
from restore.operators import Blur, Denoise, Downsample, Inpaint, gaussian_kernel, random_mask

from conftest import psnr

runner = CliRunner()


def bicubic_up(y: torch.Tensor, scale: int) -> torch.Tensor:
    return torch.nn.functional.interpolate(y, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


# ---- schedule and sampler ---------------------------------------------------------
def test_schedule_ends_at_the_degraded_image_plus_small_noise():
    s = ResidualSchedule.make()
    assert float(s.abar[0]) == 0 and float(s.bbar[0]) == 0
    assert float(s.abar[-1]) == pytest.approx(1.0) and float(s.bbar[-1]) ** 2 == pytest.approx(0.01, rel=1e-4)
    assert (s.abar[1:] > s.abar[:-1]).all() and (s.bbar[1:] >= s.bbar[:-1]).all()
    x0, x_in, eps = torch.rand(3, 2, 3, 8, 8).unbind(0)
    t = torch.tensor([s.steps, s.steps])
    assert torch.allclose(s.noisy(x0, x_in, t, eps), x_in + 0.1 * eps, atol=1e-6)


def test_noise_derived_from_the_residual_is_the_true_noise():
    s = ResidualSchedule.make()
    x0, x_in, eps = torch.randn(3, 1, 3, 8, 8).unbind(0)
    x_t = s.noisy(x0, x_in, torch.tensor([400]), eps)
    assert torch.allclose(s.noise_from_residual(x_t, x_in, x_in - x0, 400), eps, atol=1e-4)


class _OracleResidual(torch.nn.Module):
    """A 'net' that knows the clean image: predicts the exact residual at every step."""

    def __init__(self, clean: torch.Tensor):
        super().__init__()
        self.clean = clean
        self.config = UNetConfig(extra={"objective": "residual"})

    def forward(self, inp: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x_in = inp[:, 3:6]
        res = x_in - self.clean
        return torch.cat([res, torch.zeros_like(res)], dim=1)


@pytest.mark.parametrize("steps", [1, 2, 5, 15])
def test_sampler_with_an_exact_residual_returns_the_clean_image(steps):
    clean = torch.rand(1, 3, 16, 16) * 2 - 1
    x_in = clean + 0.3 * torch.randn_like(clean)
    out = sample(_OracleResidual(clean), ResidualSchedule.make(), x_in, torch.zeros(1, 1, 16, 16), torch.randn_like(clean), steps)
    assert torch.allclose(out, clean.clamp(-1, 1), atol=1e-5)


def test_unet_runs_on_any_multiple_of_its_stride_and_pads_other_sizes():
    net = UNet(UNetConfig(in_channels=7, out_channels=6, base=8, mults=(1, 2), blocks=1)).eval()
    x, (h, w) = pad_to(torch.rand(2, 7, 13, 10), net.multiple)
    assert x.shape[-2:] == (14, 10) and (h, w) == (13, 10)
    assert net(x, torch.tensor([3.0, 500.0])).shape == (2, 6, 14, 10)


# ---- shipped restorers --------------------------------------------------------------
def test_rddm_denoises_a_real_image(astronaut):
    op = Denoise(sigma=25 / 255)
    y = op.measure(astronaut, torch.Generator().manual_seed(0))
    out = restore.load("rddm").restore(y, op, generator=torch.Generator().manual_seed(0)).image
    assert out.shape == astronaut.shape
    assert psnr(out, astronaut) > psnr(y.clamp(0, 1), astronaut) + 6


def test_rddm_deblurs_a_real_image(astronaut):
    op = Blur(gaussian_kernel(2.0), sigma=2 / 255)
    y = op.measure(astronaut, torch.Generator().manual_seed(0))
    out = restore.load("rddm").restore(y, op, generator=torch.Generator().manual_seed(0)).image
    assert psnr(out, astronaut) > psnr(y.clamp(0, 1), astronaut) + 1


@pytest.mark.parametrize("model", ["rddm", "onestep-sr"])
def test_super_resolution_beats_bicubic_on_a_real_image(model, astronaut):
    op = Downsample(4)
    y = op.measure(astronaut)
    out = restore.load(model).restore(y, op, generator=torch.Generator().manual_seed(0)).image
    assert out.shape == astronaut.shape
    assert psnr(out, astronaut) > psnr(bicubic_up(y, 4), astronaut) + 0.3


def test_onestep_x2_beats_bicubic(astronaut):
    op = Downsample(2)
    y = op.measure(astronaut)
    res = restore.load("onestep-sr").restore(y, op, generator=torch.Generator().manual_seed(0))
    assert res.info["evaluations"] == 1
    assert psnr(res.image, astronaut) > psnr(bicubic_up(y, 2), astronaut)


def test_gray_images_keep_one_channel_and_same_seed_same_image(camera):
    op = Denoise(sigma=15 / 255)
    y = op.measure(camera, torch.Generator().manual_seed(1))
    rddm = restore.load("rddm", steps=2)
    a = rddm.restore(y, op, generator=torch.Generator().manual_seed(3)).image
    b = rddm.restore(y, op, generator=torch.Generator().manual_seed(3)).image
    assert a.shape == camera.shape and torch.equal(a, b)
    assert psnr(a, camera) > psnr(y.clamp(0, 1), camera) + 4


@pytest.mark.parametrize("sigma", [25, 50])
def test_gray_noise_is_denoised_at_its_luminance_level(camera, sigma):
    """Copied into three channels, gray noise is sqrt(3) times stronger along luminance than the net expects:
    the restorer must tell the net so (and scale down past the trained range), not pass sigma as it is."""
    op = Denoise(sigma=sigma / 255)
    y = op.measure(camera, torch.Generator().manual_seed(2))
    rddm = restore.load("rddm")
    ours = rddm.restore(y, op).image
    naive = rddm.restore(y.expand(-1, 3, -1, -1).contiguous(), op).image.mean(dim=1, keepdim=True)
    assert psnr(ours, camera) > psnr(naive, camera) + 2


def test_gray_input_scaling_stays_inside_the_trained_noise_range():
    from restore.diffusion.conditioning import TRAINED_SIGMAS, colour_to_gray, gray_for_colour_net

    y = torch.rand(2, 1, 8, 8)
    sigma = torch.tensor([10 / 255, 50 / 255])
    y3, k = gray_for_colour_net(y, sigma, "denoise")
    told = sigma.reshape(-1, 1, 1, 1) * 3**0.5 * k
    assert y3.shape == (2, 3, 8, 8) and float(k[0]) == 1.0 and float(k[1]) < 1.0
    assert float(told[1]) == pytest.approx(TRAINED_SIGMAS["denoise"][1])
    assert torch.allclose(colour_to_gray(y3, k), y)
    _, k_sr = gray_for_colour_net(y, sigma, "sr")  # SR nets saw no noise: nothing to scale into
    assert torch.equal(k_sr, torch.ones_like(k_sr))


def test_unshipped_scale_lists_the_scales_that_exist(astronaut):
    y = torch.rand(1, 3, 20, 20)
    with pytest.raises(RestoreError, match=r"no x3 weights; shipped scales: x2, x4"):
        restore.load("onestep-sr").restore(y, Downsample(3))
    with pytest.raises(RestoreError, match=r"shipped scales: x4"):
        restore.load("rddm").restore(y, Downsample(2))


def test_operators_the_nets_were_not_trained_on_are_refused():
    y = torch.rand(1, 3, 16, 16)
    with pytest.raises(RestoreError, match="bicubic"):
        restore.load("rddm").restore(y, Downsample(4, filter="box"))
    with pytest.raises(RestoreError, match="does not support task 'inpaint'"):
        restore.load("rddm").restore(y, Inpaint(random_mask(16, 16, 0.5)))
    with pytest.raises(RestoreError, match="option 'steps' of model 'rddm' must be between"):
        restore.load("rddm", steps=0)


# ---- command line -------------------------------------------------------------------
def test_cli_sr_with_steps_and_onestep_refuses_steps(tmp_path, astronaut):
    src, out = tmp_path / "small.png", tmp_path / "big.png"
    small = Downsample(4).forward(astronaut)[0].permute(1, 2, 0).numpy()
    cv2.imwrite(str(src), cv2.cvtColor((small * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    result = runner.invoke(app, ["sr", str(src), "-o", str(out), "--model", "rddm", "--scale", "4", "--steps", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert read_image(out).pixels.shape[-2:] == astronaut.shape[-2:]
    result = runner.invoke(app, ["sr", str(src), "-o", str(tmp_path / "b.png"), "--model", "onestep-sr", "--scale", "4",
                                 "--steps", "3"])
    assert result.exit_code != 0 and "does not take --steps" in result.output
