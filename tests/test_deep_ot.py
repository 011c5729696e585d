"""Deep optimal transport: the Gaussian map, latent patches, the tuner, its file, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from restore.errors import RestoreError
from restore.operators import Denoise, Downsample
from restore.pipeline import Pipeline
from restore.restorers.base import Restoration, Restorer
from restore.tuners import DeepOT, gelbrich_distance, latent_w2, load_calibration
from restore.tuners.calibration import FORMAT
from restore.tuners.gaussian_ot import (
    GaussianMap,
    GaussianStats,
    StatsAccumulator,
    gaussian_stats,
    make_psd,
    sqrtm_psd,
    transport_matrix,
)
from restore.tuners.latent_patches import fold_patches, split_local_mean, unfold_patches

torch.set_num_threads(1)


def random_cov(dim: int, seed: int, rank: int | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, rank or dim, generator=g, dtype=torch.float64)
    return a @ a.T / (rank or dim) + (0.1 * torch.eye(dim, dtype=torch.float64) if rank is None else 0)


# ---- Gaussian optimal transport ---------------------------------------------------------
def test_map_transports_the_covariance_exactly():
    s, t = random_cov(12, 0), random_cov(12, 1)
    m = transport_matrix(s, t)
    assert torch.allclose(m, m.T, atol=1e-12)
    assert torch.allclose(m @ s @ m, t, atol=1e-9)
    assert bool((torch.linalg.eigvalsh(m) > 0).all())  # optimal maps are gradients of convex functions


def test_map_moves_the_mean_and_samples_follow():
    s, t = random_cov(6, 2), random_cov(6, 3)
    mu_s, mu_t = torch.arange(6, dtype=torch.float64), -torch.ones(6, dtype=torch.float64)
    g = torch.Generator().manual_seed(4)
    x = mu_s + torch.randn(200_000, 6, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(s).T
    moved = gaussian_stats(GaussianMap.between(GaussianStats(mu_s, s, 0), GaussianStats(mu_t, t, 0))(x))
    assert torch.allclose(moved.mean, mu_t, atol=0.03)
    assert torch.allclose(moved.cov, t, atol=0.03 * float(t.abs().max()))


def test_gelbrich_distance_matches_the_closed_form():
    # Commuting covariances: W2^2 = |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    a_var, b_var = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64), torch.tensor([4.0, 1.0, 9.0], dtype=torch.float64)
    a = GaussianStats(torch.zeros(3, dtype=torch.float64), torch.diag(a_var), 10)
    b = GaussianStats(torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64), torch.diag(b_var), 10)
    assert gelbrich_distance(a, b) == pytest.approx(5.0 + 1.0 + 1.0 + 0.0, abs=1e-9)
    # General case: against the trace formula with a scipy-free square root of the product.
    s, t = random_cov(8, 5), random_cov(8, 6)
    root = sqrtm_psd(s)
    expected = float(torch.trace(s + t - 2 * sqrtm_psd(root @ t @ root)))
    assert gelbrich_distance(GaussianStats(torch.zeros(8, dtype=torch.float64), s, 2),
                             GaussianStats(torch.zeros(8, dtype=torch.float64), t, 2)) == pytest.approx(expected, rel=1e-9)
    # W2 of the map's own push-forward: the cost equals E|T(x) - x|^2 for the optimal T.
    m = transport_matrix(s, t)
    eye = torch.eye(8, dtype=torch.float64)
    assert float(torch.trace((m - eye) @ s @ (m - eye))) == pytest.approx(expected, rel=1e-6)


def test_psd_fix_makes_singular_and_indefinite_covariances_definite():
    singular = random_cov(10, 7, rank=3)
    fixed = make_psd(singular, eps=1e-6)
    assert float(torch.linalg.eigvalsh(fixed)[0]) >= 1e-6 * 0.99
    indefinite = singular - 1e-3 * torch.eye(10, dtype=torch.float64)
    assert float(torch.linalg.eigvalsh(make_psd(indefinite, eps=1e-6))[0]) == pytest.approx(1e-6, rel=1e-3)
    healthy = random_cov(10, 8)
    assert torch.allclose(make_psd(healthy), healthy, rtol=0, atol=1e-15)  # no loading: only re-symmetrised
    # A map from a singular covariance is finite and still reaches the target.
    m = transport_matrix(singular, healthy)
    assert torch.isfinite(m).all()


def test_statistics_are_float64_unbiased_and_streamable():
    g = torch.Generator().manual_seed(9)
    x = 1000.0 + torch.randn(500, 4, generator=g)  # far from zero: the shift keeps the digits
    acc = StatsAccumulator(4)
    for part in x.split(77):
        acc.add(part)
    stats = acc.stats()
    assert stats.cov.dtype == torch.float64 and stats.count == 500
    assert torch.allclose(stats.cov, torch.cov(x.double().T), atol=1e-9)
    assert torch.allclose(stats.mean, x.double().mean(0), atol=1e-9)


# ---- latent patches ----------------------------------------------------------------------
@pytest.mark.parametrize("p", [1, 2, 3, 5])
def test_fold_of_unfold_is_the_identity(p):
    z = torch.randn(2, 4, 7, 9, generator=torch.Generator().manual_seed(p))
    patches = unfold_patches(z, p)
    assert patches.shape == (2, 7 * 9, 4 * p * p)
    assert torch.allclose(fold_patches(patches, (7, 9), p), z, atol=1e-6)


def test_patches_are_centred_and_replicate_padded():
    z = torch.arange(12.0).view(1, 1, 3, 4)
    patches = unfold_patches(z, 3).view(12, 3, 3)
    assert torch.equal(patches[5], z[0, 0, 0:3, 0:3])  # position (1, 1): its 3x3 neighbourhood
    assert torch.equal(patches[0], torch.tensor([[0.0, 0, 1], [0, 0, 1], [4, 4, 5]]))  # corner: replicated


# ---- the tuner ---------------------------------------------------------------------------
class Smoother(Restorer):
    """A stand-in restorer (5 x 5 box filter): cheap, deterministic, and visibly smoother than nature."""

    name = "smoother"
    tasks = ("denoise",)
    channels = (1, 3)
    halo = 2

    def _restore(self, y, operator, *, generator):
        k = torch.ones(y.shape[1], 1, 5, 5) / 25
        padded = torch.nn.functional.pad(y, [2, 2, 2, 2], mode="replicate")
        return Restoration(image=torch.nn.functional.conv2d(padded, k, groups=y.shape[1]))


def crops(image: np.ndarray, side: int, count: int) -> list[torch.Tensor]:
    """``count`` side x side crops of an H x W x 3 uint8 image, row-major."""
    x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    out = [x[..., r : r + side, c : c + side] for r in range(0, x.shape[-2] - side + 1, side)
           for c in range(0, x.shape[-1] - side + 1, side)]
    return out[:count]


@pytest.fixture(scope="module")
def calibration_sets() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Unpaired: noisy astronaut crops to restore, clean coffee and chelsea crops as nature (128 x 128, 12 each)."""
    from skimage import data

    op = Denoise(sigma=25 / 255)
    clean = crops(data.astronaut(), 128, 12)
    noisy = [op.measure(x, torch.Generator().manual_seed(i)) for i, x in enumerate(clean)]
    natural = crops(data.coffee(), 128, 6) + crops(data.chelsea(), 128, 6)
    return noisy, natural


@pytest.fixture(scope="module")
def tuner(calibration_sets) -> DeepOT:
    noisy, natural = calibration_sets
    return DeepOT.calibrate(Smoother(), Denoise(sigma=25 / 255), noisy, natural)


def test_perception_zero_returns_the_restorers_output_itself(tuner, astronaut):
    op = Denoise(sigma=25 / 255)
    tuner.perception = 0.0
    own = Smoother().restore(astronaut, op).image
    out = tuner.restore(astronaut, op)
    assert torch.equal(out.image, own)
    tuner.perception = 1.0


def test_perception_moves_latent_statistics_towards_nature(tuner, calibration_sets):
    noisy, natural = calibration_sets
    op = Denoise(sigma=25 / 255)
    smooth = [Smoother().restore(y, op).image for y in noisy]
    tuned = [tuner.restore(y, op).image for y in noisy]
    half = [x + 0.5 * (t - x) for x, t in zip(smooth, tuned)]
    before, after = latent_w2(smooth, natural), latent_w2(tuned, natural)
    # The map brings the latent statistics a good part of the way to nature's on images it was not
    # calibrated on (after / before = 0.54 with the campaign's cae-a0483; it was under 0.5 with the earlier one).
    assert after < 0.6 * before
    assert latent_w2(half, natural) < before  # the slider moves along the way
    # Pixel-space interpolation: alpha 0.5 lies halfway between.
    tuner.perception = 0.5
    assert torch.allclose(tuner.restore(noisy[0], op).image, half[0], atol=1e-5)
    tuner.perception = 1.0


def test_perception_outside_the_range_is_refused(tuner):
    for bad in (-1.5, 2.5, float("nan")):
        with pytest.raises(RestoreError, match="perception must be"):
            DeepOT(Smoother(), tuner.calibration, perception=bad)


def test_tiled_equals_untiled(tuner):
    """Tiles whose origins are off the latent grid (steps of 90) and whose halo ends inside the image.

    Tile 150 with overlap 60: the smallest tile the pipeline takes is the tuner's halo (114 px)."""
    from skimage import data

    x = torch.from_numpy(data.coffee()[:330, :420].astype(np.float32) / 255).permute(2, 0, 1)[None]
    op = Denoise(sigma=25 / 255)
    whole = tuner.restore(x, op).image
    tiled = Pipeline(tuner, op, tile=150, overlap=60, batch_size=4)(x)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_calibration_round_trip_without_pickle(tuner, tmp_path, astronaut):
    path = tuner.save(tmp_path / "smoother.dot")
    tensors = load_file(str(path))  # plain safetensors: no code runs on load
    assert tensors["source_cov"].dtype == torch.float64 and tensors["source_cov"].shape == (96, 96)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()[FORMAT])
    assert meta["model"] == "smoother" and meta["operator"]["task"] == "denoise" and meta["patch"] == 1
    assert meta["autoencoder"] == "cae-a0483" and meta["counts"]["restored_images"] == 12 and meta["local_mean"] == 5
    again = DeepOT.load(path, Smoother(), perception=1.0)
    op = Denoise(sigma=25 / 255)
    assert torch.allclose(again.restore(astronaut, op).image, tuner.restore(astronaut, op).image, atol=1e-6)
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


# ---- errors ------------------------------------------------------------------------------
def test_too_few_images_says_how_many_are_needed(calibration_sets):
    noisy, natural = calibration_sets
    with pytest.raises(RestoreError, match=r"too few degraded images .* need at least 768 .*about 12 images"):
        DeepOT.calibrate(Smoother(), Denoise(sigma=25 / 255), noisy[:2], natural)
    with pytest.raises(RestoreError, match=r"too few natural images .* 768 latent patches, need at least 6912"):
        DeepOT.calibrate(Smoother(), Denoise(sigma=25 / 255), noisy * 9, natural, patch=3)


def test_wrong_channels_are_refused(calibration_sets, tuner, camera):
    noisy, natural = calibration_sets
    gray = [x.mean(dim=1, keepdim=True) for x in natural]
    with pytest.raises(RestoreError, match="3 channels but natural images 1"):
        DeepOT.calibrate(Smoother(), Denoise(sigma=25 / 255), noisy, gray)
    four = [torch.cat([x, x[:, :1]], dim=1) for x in noisy]
    with pytest.raises(RestoreError, match="1 or 3 channels"):
        DeepOT.calibrate(Smoother(), Denoise(sigma=25 / 255), four, four)
    with pytest.raises(RestoreError, match="channels"):
        tuner.restore(camera, Denoise(sigma=25 / 255))  # calibrated on colour images


def test_a_tuner_calibrated_on_gray_images_restores_gray_images(calibration_sets, camera):
    noisy, natural = calibration_sets
    gray = [[x.mean(dim=1, keepdim=True) for x in images] for images in (noisy, natural)]
    tuner = DeepOT.calibrate(Smoother(), Denoise(sigma=25 / 255), *gray)
    op = Denoise(sigma=25 / 255)
    noisy_camera = op.measure(camera, torch.Generator().manual_seed(0))
    own = Smoother().restore(noisy_camera, op).image
    out = tuner.restore(noisy_camera, op).image
    assert out.shape == camera.shape
    assert float((out - own).abs().mean()) > 1e-3  # transported, not passed through
    detail = lambda x: float(torch.diff(x, dim=-1).abs().mean())  # noqa: E731
    assert detail(out) > detail(own)  # towards nature: sharper than the box filter's output


def test_a_tuner_for_another_model_or_task_is_refused(tuner, tmp_path, astronaut):
    path = tuner.save(tmp_path / "smoother.dot")

    class Other(Smoother):
        name = "other"

    with pytest.raises(RestoreError, match="calibrated for model 'smoother'"):
        DeepOT.load(path, Other())
    with pytest.raises(RestoreError, match="does not support task 'sr'"):
        DeepOT.load(path, Smoother()).restore(astronaut, Downsample(2))


def test_corrupt_or_foreign_files_are_refused(tuner, tmp_path):
    path = tuner.save(tmp_path / "t.dot")
    truncated = tmp_path / "truncated.dot"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(RestoreError, match="not a readable tuner file"):
        load_calibration(truncated)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "weights.dot"))
    with pytest.raises(RestoreError, match="not a deep-OT tuner file"):
        load_calibration(tmp_path / "weights.dot")
    with pytest.raises(RestoreError, match="not found"):
        load_calibration(tmp_path / "missing.dot")


# ---- command line ------------------------------------------------------------------------
def write_pngs(folder, images: list[torch.Tensor]) -> None:
    import cv2

    folder.mkdir()
    for i, x in enumerate(images):
        rgb = (x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:02d}.png"), rgb[..., ::-1])


@pytest.fixture(scope="module")
def cli_folders(tmp_path_factory):
    """48 noisy 64 x 64 astronaut crops (sigma 25) and 48 clean coffee crops: 768 latent positions each, enough for p = 1."""
    from skimage import data

    root = tmp_path_factory.mktemp("dot_cli")
    op = Denoise(sigma=25 / 255)
    noisy = [op.measure(x, torch.Generator().manual_seed(i)) for i, x in enumerate(crops(data.astronaut(), 64, 48))]
    write_pngs(root / "noisy", noisy)
    write_pngs(root / "natural", crops(data.coffee(), 64, 48))
    return root


def invoke(*args):
    from typer.testing import CliRunner

    from restore.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_tune_then_denoise_with_perception(cli_folders, tmp_path):
    from restore.io import read_image

    # NLM stands in for LIDIA here: the same path, a twentieth of the time on a 2-core CPU.
    tuner = tmp_path / "nlm-s25.dot"
    result = invoke("tune", "--model", "nlm", "--task", "denoise", "--sigma", 25, "--restored-from", cli_folders / "noisy",
                    "--natural", cli_folders / "natural", "-o", tuner)
    assert result.exit_code == 0, result.output
    assert load_calibration(tuner).counts["restored_images"] == 48
    noisy = cli_folders / "noisy" / "00.png"
    outs = {a: tmp_path / f"out{a}.png" for a in (0, 0.7)}
    for alpha, out in outs.items():
        result = invoke("denoise", noisy, "-o", out, "--model", "nlm", "--sigma", 25, "--perception", alpha, "--tuner", tuner)
        assert result.exit_code == 0, result.output
    plain = tmp_path / "plain.png"
    assert invoke("denoise", noisy, "-o", plain, "--model", "nlm", "--sigma", 25).exit_code == 0
    assert outs[0].read_bytes() == plain.read_bytes()  # perception 0: the model's own output
    moved = read_image(outs[0.7]).pixels - read_image(plain).pixels
    assert float(moved.abs().mean()) > 1 / 255


@pytest.mark.parametrize("extra,message", [
    (["--max-images", 3], "too few degraded images"),
    (["--task", "inpaint"], "--task must be one of denoise, deblur, sr"),
    (["--patch", 9], "--patch must be between 1 and 5"),
    (["--model", "nope"], "unknown model 'nope'"),
    (["--precision", "fp8"], "--precision must be fp32, fp16 or bf16"),
])
def test_cli_tune_bad_input_one_line_no_file(cli_folders, tmp_path, extra, message):
    out = tmp_path / "t.dot"
    args = ["tune", "--model", "nlm", "--task", "denoise", "--sigma", 25, "--restored-from", cli_folders / "noisy",
            "--natural", cli_folders / "natural", "-o", out]
    for k in range(0, len(extra), 2):  # later options override earlier ones
        args += extra[k : k + 2]
    result = invoke(*args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_refuses_a_tuner_for_another_task_or_a_corrupt_one(cli_folders, tmp_path):
    from skimage import data

    small = [torch.nn.functional.avg_pool2d(x, 2) for x in crops(data.astronaut(), 64, 48)]
    write_pngs(tmp_path / "lowres", small)
    sr_tuner = tmp_path / "bicubic-x2.dot"
    result = invoke("tune", "--model", "bicubic", "--task", "sr", "--scale", 2, "--restored-from", tmp_path / "lowres",
                    "--natural", cli_folders / "natural", "-o", sr_tuner)
    assert result.exit_code == 0, result.output
    noisy, out = cli_folders / "noisy" / "00.png", tmp_path / "out.png"
    cases = [
        (["--tuner", sr_tuner], "calibrated for model 'bicubic', task 'sr'"),
        (["--perception", 0.5], "--perception needs --tuner"),
        (["--perception", 3, "--tuner", sr_tuner], "perception must be a number in [-1, 2]"),
        (["--tuner", tmp_path / "missing.dot"], "tuner file not found"),
    ]
    corrupt = tmp_path / "corrupt.dot"
    corrupt.write_bytes(sr_tuner.read_bytes()[:200])
    cases.append((["--tuner", corrupt], "not a readable tuner file"))
    for extra, message in cases:
        result = invoke("denoise", noisy, "-o", out, "--model", "lidia", "--sigma", 25, *extra)
        assert result.exit_code != 0 and message in result.output, (extra, result.output)
        assert not out.exists()
    again = invoke("tune", "--model", "bicubic", "--task", "sr", "--scale", 2, "--restored-from", tmp_path / "lowres",
                   "--natural", cli_folders / "natural", "-o", sr_tuner)
    assert again.exit_code != 0 and "exists (--overwrite to replace it)" in again.output


def test_cli_lidia_with_a_tuner_keeps_its_own_output_at_zero(tuner, cli_folders, tmp_path):
    """LIDIA prepares per image (noise level, centring) under the wrapper; perception 0 is its output, byte for byte."""
    from dataclasses import replace

    from restore.tuners import save_calibration

    path = save_calibration(replace(tuner.calibration, model="lidia"), tmp_path / "lidia.dot")
    noisy = cli_folders / "noisy" / "00.png"
    plain, zero, tuned = tmp_path / "plain.png", tmp_path / "zero.png", tmp_path / "tuned.png"
    assert invoke("denoise", noisy, "-o", plain, "--model", "lidia").exit_code == 0
    for out, alpha in ((zero, 0), (tuned, 0.7)):
        result = invoke("denoise", noisy, "-o", out, "--model", "lidia", "--perception", alpha, "--tuner", path)
        assert result.exit_code == 0, result.output
    assert zero.read_bytes() == plain.read_bytes()
    assert tuned.read_bytes() != plain.read_bytes()


def test_local_mean_split_adds_back_and_keeps_constants():
    z = torch.randn(1, 3, 6, 8, generator=torch.Generator().manual_seed(0))
    detail, mean = split_local_mean(z, 5)
    assert torch.allclose(detail + mean, z, atol=1e-6)
    flat, flat_mean = split_local_mean(torch.full((1, 2, 5, 5), 3.0), 5)
    assert torch.allclose(flat_mean, torch.full_like(flat_mean, 3.0)) and flat.abs().max() < 1e-6
    assert torch.equal(split_local_mean(z, 0)[0], z)
    with pytest.raises(RestoreError, match="odd number"):
        split_local_mean(z, 4)


def test_calibration_reports_when_scenes_outweigh_the_restorer(tuner):
    from dataclasses import replace

    diagnostics = tuner.calibration.diagnostics
    assert diagnostics["restored_to_natural_w2"] > 0
    assert diagnostics["natural_halves_w2"] is None  # 6 crops of 128 x 128 per half: too few for a covariance
    assert tuner.calibration.scene_noise_note() is None
    weak = replace(tuner.calibration, diagnostics={"restored_to_natural_w2": 1.0, "natural_halves_w2": 4.0})
    assert "mostly carries scene differences" in weak.scene_noise_note()
    strong = replace(tuner.calibration, diagnostics={"restored_to_natural_w2": 9.0, "natural_halves_w2": 4.0})
    assert strong.scene_noise_note() is None
