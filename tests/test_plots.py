"""restore.bench.plots: each figure is a readable, non-blank PNG; bad input is a RestoreError."""
from __future__ import annotations

import builtins

import pytest
import torch

from restore.errors import RestoreError
from restore.io import read_image

pytest.importorskip("matplotlib")

from restore.bench import plots  # noqa: E402

ROWS = [
    {"method": "lidia", "setting": "sigma 25", "psnr": 29.1, "seconds_per_image": 6.7},
    {"method": "lidia", "setting": "sigma 50", "psnr": 26.0, "seconds_per_image": 6.9},
    {"method": "bm3d", "setting": "sigma 25", "psnr": 28.6, "seconds_per_image": 1.2},
    {"method": "failed", "setting": "sigma 25", "psnr": None, "seconds_per_image": 0.5},
]


def _image(c: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, c, size, size, generator=torch.Generator().manual_seed(seed))


def _check_png(path, min_h: int, min_w: int) -> torch.Tensor:
    """The file reads back as an image of at least this size with more than one colour in it."""
    pixels = read_image(path).pixels
    assert pixels.shape[-2] >= min_h and pixels.shape[-1] >= min_w
    assert pixels.std() > 0.01
    assert not list(path.parent.glob(".*.tmp*")), "a temp file was left behind"
    return pixels


def test_psnr_vs_seconds_writes_png(tmp_path):
    out = plots.psnr_vs_seconds(ROWS, tmp_path / "denoise.png", "denoise on BSD68")
    assert out == tmp_path / "denoise.png"
    _check_png(out, 200, 300)


def test_psnr_vs_seconds_replaces_existing_file(tmp_path):
    path = tmp_path / "p.png"
    path.write_bytes(b"old")
    plots.psnr_vs_seconds(ROWS[:1], path, "one point")
    _check_png(path, 200, 300)


@pytest.mark.parametrize("rows", [[], [{"method": "a", "psnr": 20.0}], "rows", [ROWS[3]],
                                  [{"method": "a", "setting": "x4", "psnr": 20.0, "seconds_per_image": 0.0}]])
def test_psnr_vs_seconds_bad_rows(tmp_path, rows):
    with pytest.raises(RestoreError):
        plots.psnr_vs_seconds(rows, tmp_path / "p.png", "t")
    assert not (tmp_path / "p.png").exists()


def test_montage_mixed_sizes_and_channels(tmp_path):
    hr = _image(3, 32)
    panels = [("low-res\n12.3 dB", hr[..., ::4, ::4]), ("restored", hr[0]), ("gray", _image(1, 32, seed=1))]
    out = plots.montage(panels, tmp_path / "m.png", title="sr x4")
    pixels = _check_png(out, 32, 3 * 32)
    assert pixels.shape[-1] > pixels.shape[-2]  # one row of panels


def test_montage_clips_out_of_range_values(tmp_path):
    plots.montage([("over", _image() * 3 - 1)], tmp_path / "m.png")
    _check_png(tmp_path / "m.png", 32, 32)


@pytest.mark.parametrize("panels", [
    [],
    [("a", torch.rand(2, 3, 8, 8))],
    [("a", torch.rand(1, 4, 8, 8))],
    [("a", torch.full((1, 3, 8, 8), float("nan")))],
    [("a", [[0.5]])],
    [(1, torch.rand(1, 3, 8, 8))],
    [torch.rand(1, 3, 8, 8)],
])
def test_montage_bad_panels(tmp_path, panels):
    with pytest.raises(RestoreError):
        plots.montage(panels, tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


def test_std_vs_error_writes_png(tmp_path):
    x = _image()
    std = 0.05 * _image(3, seed=1)
    err = x - _image(3, seed=2)
    out = plots.std_vs_error(x, std, err, tmp_path / "s.png", title="vble")
    _check_png(out, 200, 600)


def test_std_vs_error_one_channel_maps(tmp_path):
    plots.std_vs_error(_image(3), _image(1, seed=1), _image(1, seed=2), tmp_path / "s.png")
    _check_png(tmp_path / "s.png", 200, 600)


@pytest.mark.parametrize("std, error", [
    (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 32, 32)),
    (torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 16)),
    (torch.rand(1, 2, 32, 32), torch.rand(1, 3, 32, 32)),
    ("std", torch.rand(1, 3, 32, 32)),
])
def test_std_vs_error_bad_input(tmp_path, std, error):
    with pytest.raises(RestoreError):
        plots.std_vs_error(_image(), std, error, tmp_path / "s.png")


def test_path_must_be_png(tmp_path):
    with pytest.raises(RestoreError, match=r"\.png"):
        plots.montage([("a", _image())], tmp_path / "m.jpg")


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(RestoreError, match=r"needs matplotlib: pip install 'restore\[bench\]'"):
        plots.psnr_vs_seconds(ROWS, tmp_path / "p.png", "t")
