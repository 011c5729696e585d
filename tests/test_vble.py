"""The compressive autoencoder's entropy models and the VBLE posterior sampler."""
from __future__ import annotations

import json
import math

import pytest
import torch

from restore.errors import RestoreError
from restore.nets.cae import CaeConfig, CompressiveAutoencoder, pad_to_multiple
from restore.nets.entropy import FactorizedDensity, gaussian_likelihood
from restore.noise_field import GeneratorNoise
from restore.operators import Blur, Compose, Denoise, Downsample, Inpaint, gaussian_kernel, random_mask
from restore.pipeline import Pipeline
from restore.nets.variance_decoder import VarianceDecoder
from restore.operators import PoissonGaussianNoise, satellite_operator
from restore.restorers.vble import VbleRestorer, data_weight, default_settings, initial_image
from restore.restorers.vble_xz import VbleXzRestorer
from restore.weights import save_model, update_manifest

TINY = CaeConfig(n=16, m=24)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Two random tiny autoencoders registered like shipped ones (a mild and a strong prior)."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    models = {}
    for name, alpha in (("cae-mild", 0.05), ("cae-strong", 0.005)):
        save_model(CompressiveAutoencoder(TINY), TINY.to_dict(), folder / name)
        models[name] = {"restorer": "vble", "alpha": alpha}
    save_model(VarianceDecoder(TINY), TINY.to_dict(), folder / "cae-mild-var")
    models["cae-mild-var"] = {"restorer": "vble-xz", "cae": "cae-mild"}
    (folder / "manifest.json").write_text(json.dumps({"files": {}, "models": models}))
    update_manifest(folder)
    return folder


# ---- entropy models -------------------------------------------------------------
def test_gaussian_likelihood_sums_to_one_over_the_integers():
    k = torch.arange(-60, 61, dtype=torch.float64)
    for mean, scale in ((0.3, 0.2), (-1.7, 3.0), (5.0, 10.0)):
        total = gaussian_likelihood(k, torch.tensor(mean, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64)).sum()
        assert total == pytest.approx(1.0, abs=1e-6)


def test_factorized_density_is_a_probability_and_learns():
    torch.manual_seed(0)
    density = FactorizedDensity(2)
    k = torch.arange(-80, 81, dtype=torch.float32).view(1, 1, 1, -1).expand(1, 2, 1, -1)
    assert density.likelihood(k).sum(-1).flatten().tolist() == pytest.approx([1.0, 1.0], abs=1e-3)
    # Fitting samples of N(3, 1) makes their mean code length drop.
    data = (torch.randn(1, 2, 32, 32) + 3).round()
    opt = torch.optim.Adam(density.parameters(), lr=0.05)
    before = -torch.log2(density.likelihood(data)).mean().item()
    for _ in range(200):
        loss = -torch.log2(density.likelihood(data)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < before - 1 and loss.item() < 2.5  # about the entropy of a rounded N(0, 1): 2.1 bits


def test_autoencoder_shapes_rate_and_padding():
    cae = CompressiveAutoencoder(TINY)
    x = torch.rand(2, 3, 128, 192)
    z, h = cae.encode(x)
    assert z.shape == (2, 24, 8, 12) and h.shape == (2, 16, 2, 3)
    out = cae(x)
    assert out["x_hat"].shape == x.shape and (out["bpp"] > 0).all()
    padded, size = pad_to_multiple(torch.rand(1, 3, 70, 90))
    assert padded.shape[-2:] == (128, 128) and size == (70, 90)


# ---- VBLE -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "operator, shape",
    [
        (Denoise(0.05), (70, 90)),
        (Blur(gaussian_kernel(1.0), sigma=0.01), (70, 90)),
        (Downsample(2), (35, 45)),
        (Compose(Blur(gaussian_kernel(1.0)), Downsample(2), noise=Denoise(0.01).noise), (35, 45)),
    ],
)
def test_vble_outputs_for_every_operator_and_odd_sizes(tiny_weights, operator, shape):
    vble = VbleRestorer(weights_dir=tiny_weights, samples=6, keep_samples=2, sample_batch=4, iterations=5)
    y = torch.rand(2, 3, *shape)
    res = vble.restore(y, operator, generator=torch.Generator().manual_seed(0))
    out_shape = (2, 3, 70, 90)
    assert res.image.shape == out_shape and res.std.shape == out_shape
    assert res.samples.shape == (2, 2, 3, 70, 90)
    assert (res.std >= 0).all() and torch.isfinite(res.image).all()


def test_vble_inpainting_and_gray_images(tiny_weights):
    vble = VbleRestorer(weights_dir=tiny_weights, samples=3, iterations=3)
    mask = random_mask(64, 64, 0.5, torch.Generator().manual_seed(0))
    res = vble.restore(torch.rand(1, 1, 64, 64) * mask, Inpaint(mask))
    assert res.image.shape == (1, 1, 64, 64) and res.info["iterations"] == 3 and res.samples is None


def test_vble_fit_lowers_the_negative_elbo(tiny_weights):
    torch.manual_seed(0)
    op = Blur(gaussian_kernel(1.0), sigma=0.05)
    y = op.measure(torch.rand(1, 3, 64, 64) * 0.2 + 0.4, torch.Generator().manual_seed(0))
    info = VbleRestorer(weights_dir=tiny_weights, samples=0, iterations=40).restore(y, op).info
    assert info["loss_last"] < 0.95 * info["loss_first"]  # a random decoder: the quality floor is tested on shipped weights


def test_vble_is_seeded(tiny_weights):
    vble = VbleRestorer(weights_dir=tiny_weights, samples=4, iterations=4)
    y, op = torch.rand(1, 3, 64, 64), Denoise(0.1)
    a = vble.restore(y, op, generator=torch.Generator().manual_seed(1)).image
    b = vble.restore(y, op, generator=torch.Generator().manual_seed(1)).image
    c = vble.restore(y, op, generator=torch.Generator().manual_seed(2)).image
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_vble_posterior_std_is_the_sample_spread(tiny_weights):
    vble = VbleRestorer(weights_dir=tiny_weights, samples=8, keep_samples=8, sample_batch=3, iterations=2)
    res = vble.restore(torch.rand(1, 3, 64, 64), Denoise(0.1), noise=GeneratorNoise(torch.Generator().manual_seed(0)))
    assert torch.allclose(res.samples.mean(0), res.image, atol=1e-5)
    assert torch.allclose(res.samples.std(0, unbiased=False), res.std, atol=1e-4)


def test_vble_runs_through_the_tiling_pipeline(tiny_weights):
    vble = VbleRestorer(weights_dir=tiny_weights, samples=2, keep_samples=1, iterations=2)
    out = Pipeline(vble, Denoise(0.1), tile=64, batch_size=2).run(torch.rand(1, 3, 100, 150))
    assert out.image.shape == (1, 3, 100, 150) and out.std.shape == (1, 3, 100, 150)
    assert out.samples.shape == (1, 1, 3, 100, 150)


def test_vble_refuses_bad_options(tiny_weights):
    with pytest.raises(RestoreError):
        VbleRestorer(weights_dir=tiny_weights, samples=2, keep_samples=3)
    with pytest.raises(RestoreError):
        VbleRestorer(weights_dir=tiny_weights, lam=0)
    with pytest.raises(RestoreError):
        default_settings(Denoise(0.1), {})


def test_initial_images_per_operator():
    y = torch.rand(1, 3, 16, 16)
    assert initial_image(y, Downsample(4)).shape[-2:] == (64, 64)
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 4:8, 4:8] = 0
    filled = initial_image(y * mask, Inpaint(mask))
    assert (filled[..., 4:8, 4:8] > 0).all()
    assert torch.equal(initial_image(y, Denoise(0.1)), y)
    assert math.isclose(default_settings(Downsample(4), {"a": 0.05, "b": 0.005}).lam, 3.0)


# ---- VBLE-xz ----------------------------------------------------------------------
def test_vble_xz_on_a_satellite_operator(tiny_weights):
    op = satellite_operator(0.15, factor=2, gain=1e-3, sigma=0.01)
    y = op.measure(torch.rand(1, 3, 64, 96), torch.Generator().manual_seed(0))
    xz = VbleXzRestorer(weights_dir=tiny_weights, samples=4, keep_samples=1, iterations=3, gamma=0.5)
    res = xz.restore(y, op, generator=torch.Generator().manual_seed(0))
    assert res.image.shape == (1, 3, 64, 96) and res.std.shape == res.image.shape and res.samples.shape[0] == 1
    assert res.info["weights"] == "cae-mild" and res.info["lambda"] == 1.0


def test_vble_xz_image_factor_adds_spread(tiny_weights):
    """With the same latent boxes, the image-space factor can only widen the posterior."""
    y, op = torch.rand(1, 3, 64, 64), Denoise(0.1)
    kwargs = dict(weights_dir=tiny_weights, samples=16, iterations=1, lr=1e-8)
    plain = VbleRestorer(weights="cae-mild", **kwargs).restore(y, op, generator=torch.Generator().manual_seed(0))
    xz = VbleXzRestorer(**kwargs).restore(y, op, generator=torch.Generator().manual_seed(0))
    assert xz.std.mean() > plain.std.mean()


def test_vble_xz_refuses_bad_gamma_and_missing_decoder(tiny_weights):
    with pytest.raises(RestoreError):
        VbleXzRestorer(weights_dir=tiny_weights, gamma=0)
    with pytest.raises(RestoreError, match="variance decoder"):
        VbleXzRestorer(weights_dir=tiny_weights, weights="cae-strong").settings(Denoise(0.1))


def test_poisson_gaussian_data_weight_follows_the_signal():
    y = torch.tensor([[[[0.0, 0.5, 1.0]]]])
    op = Denoise(noise=PoissonGaussianNoise(gain=0.01, sigma=0.02))
    w = data_weight(op, y)
    assert torch.allclose(1 / w, 0.02**2 + 0.01 * y)


# ---- shipped weights: quality floors -----------------------------------------
def test_shipped_vble_deblurs_better_than_the_blurred_input():
    """A floor, not the issue's bar (see models/vble/README.md for the measured table)."""
    from skimage import data

    x = torch.from_numpy(data.astronaut()[30:158, 150:278].astype("float32") / 255).permute(2, 0, 1)[None]
    op = Blur(gaussian_kernel(1.0), sigma=2.55 / 255, boundary="reflect")
    y = op.measure(x, torch.Generator().manual_seed(0))
    res = VbleRestorer(samples=10, iterations=150).restore(y, op, generator=torch.Generator().manual_seed(0))

    def psnr(a):
        return float(10 * torch.log10(1 / ((a.clamp(0, 1) - x)[..., 5:-5, 5:-5] ** 2).mean()))

    assert psnr(res.image) > psnr(y) + 0.3
    assert res.std.mean() > 0
