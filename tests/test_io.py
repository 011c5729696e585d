"""Tests for restore.io: round trips, alpha, atomic writes and bad files."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from restore import io as rio
from restore.errors import RestoreError

H, W = 48, 64  # small crops keep the suite fast on 2 CPU cores


def _gray8() -> np.ndarray:
    return np.ascontiguousarray(skdata.camera()[100 : 100 + H, 200 : 200 + W])


def _rgb8() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[50 : 50 + H, 150 : 150 + W])


def _to16(a: np.ndarray) -> np.ndarray:
    # Fill the low byte too, so a 16 -> 8 -> 16 bit loss would be caught.
    low = np.random.default_rng(0).integers(0, 256, a.shape, dtype=np.uint16)
    return (a.astype(np.uint16) << 8) | low


def _alpha(depth: int) -> np.ndarray:
    ramp = np.tile(np.linspace(0, 255, W).astype(np.uint8), (H, 1))
    return _to16(ramp) if depth == 16 else ramp


def _color(kind: str, depth: int) -> np.ndarray:
    base = _gray8() if kind.startswith("gray") else _rgb8()
    return _to16(base) if depth == 16 else base


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("kind", ["gray", "rgb", "rgba", "gray_alpha"])
def test_round_trip_is_exact(tmp_path: Path, ext: str, depth: int, kind: str) -> None:
    color = _color(kind, depth)
    alpha = _alpha(depth) if kind in ("rgba", "gray_alpha") else None
    path = tmp_path / f"img{ext}"
    rio.write_image(path, rio.from_numpy_image(color), bit_depth=depth, alpha=alpha)

    img = rio.read_image(path)
    assert img.bit_depth == depth
    assert img.path == path
    assert img.pixels.dtype == torch.float32
    assert img.pixels.shape == (1, 1 if kind.startswith("gray") else 3, H, W)
    np.testing.assert_array_equal(rio.to_numpy_image(img.pixels, color.dtype), color)
    if alpha is None:
        assert img.alpha is None
    else:
        assert img.alpha.dtype == alpha.dtype
        assert img.alpha.tobytes() == alpha.tobytes()


def test_png_matches_independent_decoders(tmp_path: Path) -> None:
    rgb, gray, alpha = _rgb8(), _gray8(), _alpha(8)
    rio.write_image(tmp_path / "rgb.png", rio.from_numpy_image(rgb))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "rgb.png"))[:, :, ::-1], rgb)  # RGB, not BGR
    # Gray + alpha goes through restore's own PNG encoder: check it with Pillow.
    rio.write_image(tmp_path / "la.png", rio.from_numpy_image(gray), alpha=alpha)
    with Image.open(tmp_path / "la.png") as im:
        assert im.mode == "LA"
        np.testing.assert_array_equal(np.asarray(im), np.stack([gray, alpha], axis=-1))


def test_alpha_converted_to_output_depth(tmp_path: Path) -> None:
    alpha = _alpha(8)
    rio.write_image(tmp_path / "a.png", rio.from_numpy_image(_rgb8()), bit_depth=16, alpha=alpha)
    img = rio.read_image(tmp_path / "a.png")
    assert img.alpha.dtype == np.uint16
    np.testing.assert_array_equal(img.alpha, alpha.astype(np.uint16) * 257)


def test_float_and_multiband_tiff(tmp_path: Path) -> None:
    bands = np.random.default_rng(1).normal(0.5, 0.2, (H, W, 5)).astype(np.float32)
    rio.write_image(tmp_path / "f.tif", rio.from_numpy_image(bands), bit_depth=32)
    img = rio.read_image(tmp_path / "f.tif")
    assert img.bit_depth == 32 and img.pixels.shape == (1, 5, H, W) and img.alpha is None
    np.testing.assert_array_equal(rio.to_numpy_image(img.pixels), bands)  # kept as is, not clipped


def test_jpeg_read(tmp_path: Path) -> None:
    rgb = _rgb8()
    cv2.imwrite(str(tmp_path / "a.jpg"), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])
    img = rio.read_image(tmp_path / "a.jpg")
    assert img.bit_depth == 8 and img.alpha is None and img.pixels.shape == (1, 3, H, W)
    diff = np.abs(rio.to_numpy_image(img.pixels, np.uint8).astype(int) - rgb)
    assert diff.mean() < 3


def test_jpeg_write_falls_back_to_8_bit_and_drops_alpha(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="alpha"):
        rio.write_image(tmp_path / "a.jpeg", rio.from_numpy_image(_rgb8()), bit_depth=16, alpha=_alpha(8))
    img = rio.read_image(tmp_path / "a.jpeg")
    assert img.bit_depth == 8 and img.alpha is None


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sub" / "out.png"
    rio.write_image(out, rio.from_numpy_image(_gray8()))
    assert os.listdir(out.parent) == ["out.png"]

    def failing_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(RestoreError, match="cannot write"):
        rio.write_image(tmp_path / "sub" / "b.tif", rio.from_numpy_image(_gray8()))
    assert os.listdir(out.parent) == ["out.png"]


def test_refuses_overwrite_unless_asked(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    rio.write_image(out, rio.from_numpy_image(_gray8()))
    with pytest.raises(RestoreError, match="already exists"):
        rio.write_image(out, torch.zeros(1, 1, H, W))
    rio.write_image(out, torch.zeros(1, 1, H, W), overwrite=True)
    assert rio.read_image(out).pixels.max() == 0


def test_protect_refuses_even_with_overwrite(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    rio.write_image(src, rio.from_numpy_image(_gray8()))
    other_spelling = tmp_path / "x" / ".." / "in.png"
    with pytest.raises(RestoreError, match="input"):
        rio.write_image(other_spelling, torch.zeros(1, 1, H, W), overwrite=True, protect=[src])
    np.testing.assert_array_equal(rio.to_numpy_image(rio.read_image(src).pixels, np.uint8), _gray8())


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_truncated_file_is_refused(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"t{ext}"
    rio.write_image(path, rio.from_numpy_image(_rgb8()))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RestoreError, match=r"truncated.*|corrupt.*") as info:
        rio.read_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_corrupt_png_checksum_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.png"
    rio.write_image(path, rio.from_numpy_image(_rgb8()))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RestoreError, match="corrupt"):
        rio.read_image(path)


def test_text_file_renamed_png_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("just some text\n")
    with pytest.raises(RestoreError, match="not a PNG"):
        rio.read_image(path)


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.png", "not found"), ("folder.png", "directory"), ("data.gif", "unsupported"), ("empty.png", "empty")],
)
def test_bad_paths(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "data.gif").write_bytes(b"GIF89a")
    (tmp_path / "empty.png").touch()
    with pytest.raises(RestoreError, match=message):
        rio.read_image(tmp_path / name)


def test_write_rejects_bad_requests(tmp_path: Path) -> None:
    img = rio.from_numpy_image(_rgb8())
    with pytest.raises(RestoreError, match="unknown output format"):
        rio.write_image(tmp_path / "a.gif", img)
    with pytest.raises(RestoreError, match="1 \\(gray\\) or 3"):
        rio.write_image(tmp_path / "a.png", torch.zeros(1, 4, 8, 8))
    with pytest.raises(RestoreError, match="NaN"):
        rio.write_image(tmp_path / "a.png", torch.full((1, 3, 8, 8), float("nan")))
    assert list(tmp_path.iterdir()) == []


def test_list_images(tmp_path: Path) -> None:
    for name in ["b.PNG", "a.jpg", "c.tiff", "d.bmp", "notes.txt", ".hidden.png"]:
        (tmp_path / name).touch()
    (tmp_path / "dir.png").mkdir()
    assert [p.name for p in rio.list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.tiff", "d.bmp"]
    with pytest.raises(RestoreError, match="not found"):
        rio.list_images(tmp_path / "nope")


def test_numpy_helpers_with_explicit_range() -> None:
    twelve_bit = np.array([[0, 4095], [2048, 1]], dtype=np.uint16)
    t = rio.from_numpy_image(twelve_bit, data_range=4095)
    assert t.shape == (1, 1, 2, 2) and float(t.max()) == 1.0
    np.testing.assert_array_equal(rio.to_numpy_image(t, np.uint16, data_range=4095), twelve_bit)
    rgb = _rgb8()
    assert rio.from_numpy_image(rgb).shape == (1, 3, H, W)
    np.testing.assert_array_equal(rio.to_numpy_image(rio.from_numpy_image(rgb), np.uint8), rgb)
    with pytest.raises(RestoreError, match="data_range"):
        rio.from_numpy_image(np.zeros((2, 2), np.int32))
