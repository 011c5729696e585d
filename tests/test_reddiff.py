"""RED-Diff with the shipped diffusion prior: every task, seeding, user operators, bad input, the CLI."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from restore.cli import app
from restore.errors import RestoreError
from restore.operators import Blur, Denoise, Downsample, Inpaint, Operator, gaussian_kernel, random_mask
from restore.pipeline import Pipeline
from restore.restorers import load
from restore.restorers.reddiff import RedDiff, prior_denoise
from conftest import psnr


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a 2-core machine shared with other work, two threads wait on
    each other (the prior ran 4x slower with two than with one beside another job)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> RedDiff:
    return RedDiff(steps=10, progress=False)


@pytest.fixture(scope="module")
def face() -> torch.Tensor:
    """A 64 x 64 RGB crop of scikit-image's astronaut (her face)."""
    from skimage import data

    return torch.from_numpy(data.astronaut()[40:104, 180:244].astype(np.float32) / 255).permute(2, 0, 1)[None]


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


OPERATORS = {
    "denoise": lambda: Denoise(25 / 255),
    "deblur": lambda: Blur(gaussian_kernel(1.6), sigma=2 / 255),
    "sr": lambda: Downsample(2),
    "inpaint": lambda: Inpaint(random_mask(64, 64, 0.5, seeded(0))),
}


class HalfShift(Operator):
    """A user-written operator: average of the image and its copy shifted by one pixel (forward only)."""

    task = "generic"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x + torch.roll(x, 1, dims=-1))


class Rounding(Operator):
    """Quantises its output: zero gradient almost everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 8) / 8

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        return y


class Detached(Rounding):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach() * 0.5


class Cropping(Operator):
    """Forgets to say that its output is smaller than its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., 1:, 1:]


@pytest.mark.parametrize("task", sorted(OPERATORS))
def test_every_task_gives_an_image_of_the_right_size(model, face, task):
    op = OPERATORS[task]()
    y = op.measure(face, seeded(1))
    res = model.restore(y, op, generator=seeded(0))
    assert res.image.shape == face.shape and torch.isfinite(res.image).all()
    assert res.image.min() >= 0 and res.image.max() <= 1
    assert res.info["steps"] == 10 and res.info["lambda"] > 0 and res.info["lr"] > 0


def test_gray_images_and_odd_sizes(model, camera):
    x = camera[..., :50, :70]
    op = Denoise(25 / 255)
    res = model.restore(op.measure(x, seeded(0)), op, generator=seeded(0))
    assert res.image.shape == (1, 1, 50, 70)


def test_deblurring_beats_the_blurred_input_and_the_pseudo_inverse(face):
    """A floor, not the tuned quality (benchmarks/results/reddiff_tune.md): 60 steps on a 64 x 64 face.

    Fewer steps do worse than the input: the early, high-noise steps pull mu towards
    the prior's mean image and the late ones need time to bring the detail back.
    """
    op = Blur(gaussian_kernel(1.6), sigma=2 / 255)
    y = op.measure(face, seeded(0))
    res = RedDiff(steps=60, progress=False).restore(y, op, generator=seeded(0))
    assert psnr(res.image, face) > psnr(y, face) + 1.5
    assert psnr(res.image, face) > psnr(op.pinv(y).clamp(0, 1), face) + 0.3


def test_the_prior_is_a_denoiser(face):
    noisy = Denoise(25 / 255).measure(face, seeded(0))
    clean = prior_denoise(RedDiff().prior(), noisy, 25 / 255)
    assert psnr(clean.clamp(0, 1), face) > psnr(noisy, face) + 5


def test_same_seed_same_image(model, face):
    op = Denoise(25 / 255)
    y = op.measure(face, seeded(0))
    a, b, c = (model.restore(y, op, generator=seeded(s)).image for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_user_written_differentiable_operator_works(face):
    op = HalfShift()
    y = op(face)
    res = RedDiff(steps=20, progress=False).restore(y, op, generator=seeded(0))
    assert res.image.shape == face.shape
    grey = torch.full_like(face, 0.5)  # its start: the operator has no pinv
    # It fits the data through A's gradients alone, and gets closer to the image too.
    assert psnr(op(res.image), y) > psnr(op(grey), y) + 8
    assert psnr(res.image, face) > psnr(grey, face) + 5


@pytest.mark.parametrize("operator", [Rounding(), Detached()])
def test_non_differentiable_operators_are_refused(model, face, operator):
    with pytest.raises(RestoreError, match="not differentiable"):
        model.restore(face, operator)


def test_shape_mismatch_names_both_shapes(model, face):
    with pytest.raises(RestoreError, match=r"\(1, 3, 63, 63\).*\(1, 3, 64, 64\)"):
        model.restore(face, Cropping())


def test_bad_values_and_options_are_refused(model, face):
    y = face.clone()
    y[0, 0, 3, 3] = float("nan")
    with pytest.raises(RestoreError, match="NaN"):
        model.restore(y, Denoise(0.1))
    with pytest.raises(RestoreError, match="channels"):
        model.restore(torch.rand(1, 2, 16, 16), Denoise(0.1))
    for kwargs in ({"steps": 0}, {"steps": 1001}, {"lam": 0}, {"lr": -1}):
        with pytest.raises(RestoreError):
            RedDiff(**kwargs)


def test_runs_under_inference_mode_and_through_the_tiler(face):
    op = Denoise(25 / 255)
    y = op.measure(face, seeded(0))
    with torch.inference_mode():
        RedDiff(steps=2, progress=False).restore(y, op)
    out = Pipeline(RedDiff(steps=2, progress=False), op, tile=32, batch_size=4).run(y)
    assert out.image.shape == face.shape and torch.isfinite(out.image).all()


def test_bf16_autocast_keeps_the_quality(face):
    """--precision bf16 runs the prior in bfloat16 (twice as fast on this CPU); data term and Adam stay float32."""
    op = Downsample(2)
    y = op(face)
    full, half = (Pipeline(RedDiff(steps=60, progress=False), op, tile=0, precision=p).run(y).image
                  for p in ("fp32", "bf16"))
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    assert abs(psnr(half, face) - psnr(full, face)) < 0.2
    assert psnr(half, full) > 33  # measured 38 dB; two seeds differ by 31 dB


# ---- the command line -----------------------------------------------------------
def test_cli_denoises_with_reddiff_and_refuses_steps_elsewhere(tmp_path, camera):
    src, out = tmp_path / "x.png", tmp_path / "y.png"
    cv2.imwrite(str(src), (camera[0, 0, :64, :64].numpy() * 255).round().astype(np.uint8))
    runner = CliRunner()
    result = runner.invoke(app, ["denoise", str(src), "-o", str(out), "--model", "reddiff", "--steps", "5",
                                 "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert out.exists()
    bad = runner.invoke(app, ["denoise", str(src), "-o", str(tmp_path / "z.png"), "--model", "lidia", "--steps", "5"])
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert bad.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error:") and "--steps" in lines[0]
    assert "reddiff" in lines[0]


def test_registered_with_the_cli_options():
    model = load("reddiff", device="cpu", steps=7, lam=0.5, lr=0.05)
    assert (model.steps, model.lam, model.lr) == (7, 0.5, 0.05)
