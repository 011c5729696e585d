"""Deep OT in a local diffusers AutoencoderKL's latent (the paper's autoencoder), with a tiny random one."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from restore.errors import RestoreError
from restore.operators import Denoise
from restore.restorers.base import Restoration, Restorer
from restore.tuners import DeepOT, latent_w2, load_calibration
from restore.tuners.codecs import open_codec
from restore.tuners.deep_ot import latent_footprint
from restore.tuners.kl_codec import AutoencoderKLCodec, convolution_reach
from restore.tuners.latent_stats import latent_patch_stats

diffusers = pytest.importorskip("diffusers")

SIGMA = 25 / 255


def tiny_autoencoder(seed: int = 0) -> torch.nn.Module:
    """Two levels (8, 16 channels: downsampling 2), 4 latent channels: builds and runs in milliseconds."""
    torch.manual_seed(seed)
    return diffusers.AutoencoderKL(
        block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, sample_size=32,
        layers_per_block=1, scaling_factor=0.5)


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vae") / "tiny-vae"
    tiny_autoencoder().save_pretrained(folder)
    return folder


class Smoother(Restorer):
    """A stand-in restorer (3 x 3 box filter): deterministic and visibly smoother than nature."""

    name = "smoother"
    tasks = ("denoise",)
    channels = (1, 3)
    halo = 1

    def _restore(self, y, operator, *, generator):
        k = torch.ones(y.shape[1], 1, 3, 3) / 9
        padded = torch.nn.functional.pad(y, [1, 1, 1, 1], mode="replicate")
        return Restoration(image=torch.nn.functional.conv2d(padded, k, groups=y.shape[1]))


def crops(image: np.ndarray, side: int, count: int) -> list[torch.Tensor]:
    x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    out = [x[..., r : r + side, c : c + side] for r in range(0, x.shape[-2] - side + 1, side)
           for c in range(0, x.shape[-1] - side + 1, side)]
    return out[:count]


@pytest.fixture(scope="module")
def sets():
    """Unpaired 32 x 32 crops: 6 noisy astronaut ones to restore, 6 clean coffee ones as nature."""
    from skimage import data

    op = Denoise(sigma=SIGMA)
    noisy = [op.measure(x, torch.Generator().manual_seed(i)) for i, x in enumerate(crops(data.astronaut(), 32, 6))]
    return noisy, crops(data.coffee(), 32, 6)


@pytest.fixture(scope="module")
def tuner(vae_dir, sets):
    noisy, natural = sets
    return DeepOT.calibrate(Smoother(), Denoise(sigma=SIGMA), noisy, natural, autoencoder=vae_dir, tile=0)


def test_latent_is_the_scaled_posterior_mean_of_the_image_in_minus_one_to_one(vae_dir):
    codec = AutoencoderKLCodec(vae_dir)
    x = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    z, where = codec.encode(x)
    assert codec.stride == 2 and codec.latent_channels == 4
    assert (where.top, where.left) == (4, 4)  # margin: two latent cells
    padded = torch.nn.functional.pad(x, [where.left, where.right, where.top, where.bottom], mode="replicate")
    with torch.no_grad():
        mean = codec.net.encode(padded * 2 - 1).latent_dist.mean
    assert z.shape == (1, 4, padded.shape[-2] // 2, padded.shape[-1] // 2)
    assert torch.allclose(z, mean * 0.5, atol=1e-6)
    back = codec.decode(z, where, 3)
    with torch.no_grad():
        expected = (codec.net.decode(mean).sample + 1) / 2
    assert back.shape == x.shape
    assert torch.allclose(back, expected[..., 4:24, 4:32], atol=1e-5)
    gray = codec.decode(*codec.encode(x[:, :1]), 1)
    assert gray.shape == (1, 1, 20, 28)


@pytest.mark.parametrize("origin", [(0, 0), (3, 5), (8, 17), (250, 1001)])
def test_padding_puts_the_latent_grid_on_the_whole_images_multiples_of_8(origin):
    from restore.tuners.latent_codec import placement

    where = placement(37, 50, origin, stride=8, margin=16)
    assert min(where.top, where.left, where.bottom, where.right) >= 16
    # Padded rows 0, 8, 16, ... (the latent cells' corners) are whole-image rows that are multiples of 8.
    assert (origin[0] - where.top) % 8 == 0 and (origin[1] - where.left) % 8 == 0
    assert (where.top + 37 + where.bottom) % 8 == 0 and (where.left + 50 + where.right) % 8 == 0


def test_force_upcast_keeps_the_autoencoder_in_fp32_under_autocast(vae_dir):
    codec = AutoencoderKLCodec(vae_dir)
    assert codec.force_upcast  # diffusers' default, and SD's config
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    z, where = codec.encode(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z16, _ = codec.encode(x)
        back = codec.decode(z16, where, 3)
    assert z16.dtype == back.dtype == torch.float32
    assert torch.equal(z16, z) and torch.equal(back, codec.decode(z, where, 3))


def test_reach_of_stable_diffusions_autoencoder():
    """SD's 4 levels, 2 ResNets each: 115 px of encoder context, 145 of decoder; a 288 px halo for p = 1."""
    assert convolution_reach(4, 2) == (115, 145)
    assert convolution_reach(2, 1) == (1 + 2 + 2 + 4 + 8 + 2, 2 + 8 + 4 + 8 + 2 + 1)


def test_tuner_in_the_autoencoder_kl_latent(tuner, vae_dir, sets):
    noisy, natural = sets
    op = Denoise(sigma=SIGMA)
    assert tuner.calibration.source.dim == 4  # latent channels x 1 x 1
    assert tuner.calibration.autoencoder == str(vae_dir.resolve())
    assert len(tuner.calibration.autoencoder_digest) == 64
    assert tuner.halo == 1 + latent_footprint(1, 5, tuner.codec)
    y = torch.rand(1, 3, 40, 36, generator=torch.Generator().manual_seed(1))
    first, second = tuner.restore(y, op).image, tuner.restore(y, op).image
    assert first.shape == y.shape and torch.isfinite(first).all()
    assert torch.equal(first, second)  # the posterior mean, never a sample: deterministic
    own = Smoother().restore(y, op).image
    assert float((first - own).abs().mean()) > 1e-4
    tuner.perception = 0.0
    assert torch.equal(tuner.restore(y, op).image, own)
    tuner.perception = 1.0
    # The statistics are of the AutoencoderKL's latent (a random net's: how far the decoded change moves
    # the statistics is a property of trained weights, not tested here).
    smooth = [Smoother().restore(x, op).image for x in noisy]
    source = latent_patch_stats(tuner.codec, smooth, 1, 5)
    assert torch.allclose(source.mean, tuner.calibration.source.mean, atol=1e-9)
    assert source.count == 6 * 16 * 16 == tuner.calibration.counts["source_patches"]
    assert latent_w2(smooth, natural, codec=tuner.codec) > 0


def test_tuner_file_records_the_folder_and_its_weights(tuner, vae_dir, tmp_path):
    op = Denoise(sigma=SIGMA)
    path = tuner.save(tmp_path / "smoother.dot")
    y = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(2))
    again = DeepOT.load(path, Smoother())
    assert again.codec.name == str(vae_dir.resolve())
    assert torch.equal(again.restore(y, op).image, tuner.restore(y, op).image)
    # Moved: found again through autoencoder=; other weights in its place: refused.
    moved = tmp_path / "moved"
    tiny_autoencoder().save_pretrained(moved)
    assert torch.equal(DeepOT.load(path, Smoother(), autoencoder=moved).restore(y, op).image, tuner.restore(y, op).image)
    other = tmp_path / "other"
    tiny_autoencoder(seed=1).save_pretrained(other)
    with pytest.raises(RestoreError, match="other weights than the tuner was calibrated with"):
        DeepOT.load(path, Smoother(), autoencoder=other)
    doc = load_calibration(path)
    assert doc.autoencoder_digest == tuner.calibration.autoencoder_digest
    gone = replace(doc, autoencoder=str(tmp_path / "deleted"))
    with pytest.raises(RestoreError, match="folder this tuner was calibrated in is gone"):
        DeepOT(Smoother(), gone)


def test_tiles_run_through_the_pipeline(tuner):
    """Tiled runs give whole outputs; they agree with one whole-image call only up to blending, since
    the AutoencoderKL's GroupNorm (and mid-block attention) see the whole tile (see kl_codec)."""
    from restore.pipeline import Pipeline

    op = Denoise(sigma=SIGMA)
    x = torch.rand(1, 3, 120, 90, generator=torch.Generator().manual_seed(3))
    tiled = Pipeline(tuner, op, tile=64, batch_size=2)(x)
    assert tiled.shape == x.shape and torch.isfinite(tiled).all()
    assert torch.equal(tiled, Pipeline(tuner, op, tile=64, batch_size=2)(x))


def test_bad_autoencoders_are_refused_in_one_line(tmp_path, vae_dir):
    not_kl = tmp_path / "unet"
    not_kl.mkdir()
    (not_kl / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((vae_dir / "config.json").read_text())
    (pickled / "diffusion_pytorch_model.bin").write_bytes(b"not read")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((vae_dir / "config.json").read_text())
    (broken / "diffusion_pytorch_model.safetensors").write_bytes(b"truncated")
    cases = {
        "stabilityai/sd-vae-ft-mse": "hub ids are refused",  # never a download
        str(tmp_path / "missing"): "hub ids are refused",
        "no-such-cae": "neither a shipped autoencoder",
        str(vae_dir / "diffusion_pytorch_model.safetensors"): "give the AutoencoderKL folder that holds it",
        str(tmp_path): "not a diffusers model folder",
        str(not_kl): "not a diffusers AutoencoderKL folder",
        str(pickled): "no .safetensors weights",
        str(broken): "cannot load it as a diffusers AutoencoderKL",
    }
    for given, message in cases.items():
        with pytest.raises(RestoreError, match=message) as err:
            open_codec(given)
        assert "\n" not in str(err.value), given


def test_calibration_options_are_declared_and_checked(vae_dir, sets):
    from restore.options import declared
    from restore.tuners import CalibrationOptions

    assert [o.name for o in declared(CalibrationOptions)] == ["patch", "local_mean", "autoencoder"]
    noisy, natural = sets
    for given, message in (({"patch": 9}, "option 'patch' of model 'dot' must be between 1 and 5"),
                           ({"local_mean": 4}, "must be 0 or odd"),
                           ({"patch": 1.5}, "option 'patch' of model 'dot' must be an integer"),
                           ({"autoencoder": 3}, "option 'autoencoder' of model 'dot' must be text")):
        with pytest.raises(RestoreError, match=message):
            DeepOT.from_restored(Smoother(), Denoise(sigma=SIGMA), noisy, natural, **given)
    with pytest.raises(RestoreError, match="hub ids are refused"):
        DeepOT.calibrate(Smoother(), Denoise(sigma=SIGMA), noisy, natural, autoencoder="org/some-vae")


def test_the_digest_is_of_the_weights_read_not_of_variants(tmp_path, vae_dir):
    from restore.tuners.kl_codec import folder_digest

    both = tmp_path / "both"
    tiny_autoencoder().save_pretrained(both)
    tiny_autoencoder().half().save_pretrained(both, variant="fp16")
    assert (both / "diffusion_pytorch_model.fp16.safetensors").is_file()
    assert folder_digest(both) == folder_digest(vae_dir)


def test_a_pipeline_folder_uses_its_vae(tmp_path, vae_dir):
    pipeline = tmp_path / "sd"
    tiny_autoencoder().save_pretrained(pipeline / "vae")
    (pipeline / "model_index.json").write_text("{}")
    assert open_codec(pipeline).name == str((pipeline / "vae").resolve())


# ---- command line ------------------------------------------------------------------------
def invoke(*args):
    from typer.testing import CliRunner

    from restore.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def cli_folders(tmp_path_factory, sets):
    import cv2

    root = tmp_path_factory.mktemp("kl_cli")
    for name, images in zip(("noisy", "natural"), sets):
        (root / name).mkdir()
        for i, x in enumerate(images):
            rgb = (x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
            cv2.imwrite(str(root / name / f"{i:02d}.png"), rgb[..., ::-1])
    return root


def test_cli_tune_with_an_autoencoder_kl_then_denoise(cli_folders, vae_dir, tmp_path):
    from restore.io import read_image

    tuner = tmp_path / "nlm-kl.dot"
    tune = ["tune", "--model", "nlm", "--task", "denoise", "--sigma", 25, "--restored-from", cli_folders / "noisy",
            "--natural", cli_folders / "natural", "--tile", 0]
    result = invoke(*tune, "--autoencoder", vae_dir, "-o", tuner)
    assert result.exit_code == 0, result.output
    assert load_calibration(tuner).autoencoder == str(vae_dir.resolve())
    noisy, out, plain = cli_folders / "noisy" / "00.png", tmp_path / "out.png", tmp_path / "plain.png"
    result = invoke("denoise", noisy, "-o", out, "--model", "nlm", "--sigma", 25, "--tuner", tuner, "--perception", 1)
    assert result.exit_code == 0, result.output
    assert invoke("denoise", noisy, "-o", plain, "--model", "nlm", "--sigma", 25).exit_code == 0
    assert read_image(out).pixels.shape == read_image(plain).pixels.shape
    assert out.read_bytes() != plain.read_bytes()
    bad = tmp_path / "bad.dot"
    result = invoke(*tune, "--autoencoder", "stabilityai/sd-vae-ft-mse", "-o", bad)
    assert result.exit_code == 1 and "hub ids are refused" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not bad.exists()
