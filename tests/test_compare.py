"""``restore compare`` and ``restore.compare_grid``: labelled grids, scores against a reference, one-line refusals."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from restore.cli import app
from restore.compare_grid import GAP, Crop, compare_grid, panel_caption
from restore.errors import RestoreError
from restore.io import read_image
from restore.metrics import psnr

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["compare", *map(str, args)])


@pytest.fixture()
def files(tmp_path):
    """A clean 8-bit RGB image, a noisy copy, its gray version and a 16-bit copy of the clean one (64 x 48)."""
    rng = np.random.default_rng(0)
    clean = np.zeros((48, 64, 3), np.uint8)
    clean[:] = np.linspace(0, 255, 64)[None, :, None].astype(np.uint8)
    clean[10:30, 20:50] = (40, 90, 220)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    paths = {name: tmp_path / f"{name}.png" for name in ("clean", "noisy", "gray", "deep")}
    cv2.imwrite(str(paths["clean"]), clean)
    cv2.imwrite(str(paths["noisy"]), noisy)
    cv2.imwrite(str(paths["gray"]), cv2.cvtColor(noisy, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(paths["deep"]), clean.astype(np.uint16) * 257)
    return paths


def test_grid_holds_every_panel_unchanged_in_one_row():
    a, b = torch.rand(1, 3, 40, 30), torch.rand(1, 1, 40, 30)
    grid = compare_grid([a, b], ["a", "b"])
    assert grid.shape[:2] == (1, 3) and grid.shape[-1] == 2 * 30 + GAP
    # the first panel's pixels are in the grid as given, below its label strip
    column = grid[0, :, :, :30]
    rows = [i for i in range(column.shape[1] - 39) if torch.allclose(column[:, i:i + 40], a[0], atol=1e-6)]
    assert len(rows) == 1
    # the gray panel is shown as three equal channels
    right = grid[0, :, rows[0]:rows[0] + 40, 30 + GAP:]
    assert torch.allclose(right, b[0].expand(3, -1, -1), atol=1e-6)


def test_columns_wrap_panels_into_rows_and_crop_adds_a_zoomed_row():
    images = [torch.rand(1, 3, 32, 32) for _ in range(3)]
    one_row = compare_grid(images, ["a", "b", "c"])
    two_rows = compare_grid(images, ["a", "b", "c"], columns=2)
    assert two_rows.shape[-1] == 2 * 32 + GAP and two_rows.shape[-2] > one_row.shape[-2]
    zoomed = compare_grid(images, ["a", "b", "c"], crop=Crop(4, 4, 8, 8))
    assert zoomed.shape[-2] >= one_row.shape[-2] + 32  # the 8 x 8 crop shown x4
    # the zoom is nearest neighbour: a 4 x 4 block of one value per source pixel
    bottom = zoomed[0, :, -32:, :32]
    assert torch.allclose(bottom[:, :4, :4], images[0][0, :, 4:5, 4:5].expand(-1, 4, 4), atol=1e-6)


def test_caption_scores_are_the_metrics_of_the_project():
    ref = torch.rand(1, 3, 32, 32)
    est = (ref + 0.05 * torch.randn_like(ref)).clamp(0, 1)
    lines = panel_caption(est, ref)
    assert lines[0] == f"PSNR {float(psnr(est, ref)):.2f} dB" and lines[1].startswith("SSIM 0.")
    assert panel_caption(ref, ref)[0] == "PSNR inf"
    assert len(panel_caption(ref[..., :8, :8], ref[..., :8, :8])) == 1  # no SSIM under its 11 x 11 window


@pytest.mark.parametrize("bad, message", [
    (dict(images=[torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9)], labels=["a", "b"]), "one size"),
    (dict(images=[torch.rand(1, 4, 8, 8)], labels=["bands"]), "gray or RGB"),
    (dict(images=[torch.rand(1, 3, 8, 8)], labels=["a", "b"]), "2 labels for 1 images"),
    (dict(images=[], labels=[]), "at least one image"),
    (dict(images=[torch.rand(1, 3, 8, 8)], labels=["a"], crop=Crop(4, 4, 8, 8)), "does not fit"),
    (dict(images=[torch.rand(1, 3, 8, 8)], labels=["a"], columns=0), "columns"),
])
def test_bad_grids_are_refused_in_one_line(bad, message):
    with pytest.raises(RestoreError, match=message) as info:
        compare_grid(**bad)
    assert "\n" not in str(info.value)


def test_cli_writes_a_16_bit_grid_of_gray_and_rgb_with_scores(files, tmp_path):
    out = tmp_path / "grid.png"
    result = invoke(files["noisy"], files["gray"], files["deep"], "--ref", files["clean"], "--crop", "8,8,16,12",
                    "-o", out)
    assert result.exit_code == 0, result.output
    grid = read_image(out)
    assert grid.bit_depth == 16 and grid.pixels.shape[1] == 3
    assert grid.pixels.shape[-1] == 4 * 64 + 3 * GAP  # reference first, then the three images
    assert not list(tmp_path.glob("*.tmp*"))


def test_cli_labels_and_existing_outputs(files, tmp_path):
    out = tmp_path / "grid.jpg"
    assert invoke(files["clean"], files["noisy"], "--labels", "clean,noisy", "-o", out).exit_code == 0
    first = out.read_bytes()
    skipped = invoke(files["noisy"], "-o", out)
    assert skipped.exit_code == 0 and "skipped" in skipped.output and out.read_bytes() == first
    assert invoke(files["noisy"], "-o", out, "--overwrite").exit_code == 0 and out.read_bytes() != first


@pytest.mark.parametrize("args, message", [
    (["{clean}", "{small}"], "one size"),
    (["{clean}", "--ref", "{small}"], "one size"),
    (["{clean}", "--crop", "1,2,3"], "X,Y,W,H"),
    (["{clean}", "--crop", "60,0,10,10"], "does not fit"),
    (["{clean}", "{noisy}", "--labels", "only-one"], "--labels"),
    (["{clean}", "--columns", "0"], "--columns"),
    (["{missing}"], "missing.png"),
])
def test_cli_refuses_bad_inputs_in_one_line_and_writes_nothing(files, tmp_path, args, message):
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((20, 64), np.uint8))
    names = {**{k: str(v) for k, v in files.items()}, "small": str(tmp_path / "small.png"),
             "missing": str(tmp_path / "missing.png")}
    out = tmp_path / "grid.png"
    result = invoke(*[a.format(**names) for a in args], "-o", out)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and message in result.output and len(result.output.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("flags", [[], ["--overwrite"]])
def test_cli_never_writes_over_an_input(files, flags):
    before = files["clean"].read_bytes()
    result = invoke(files["noisy"], "--ref", files["clean"], "-o", files["clean"], *flags)
    assert result.exit_code == 1 and "refusing to write over an input" in result.output
    assert files["clean"].read_bytes() == before
