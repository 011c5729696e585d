"""What bad inputs and faults get (issue 22): the list of promises, one test per case, CLI and Python.

Each CLI case gives one line on stderr, a non-zero exit, no output file and no
leftover temp file, unless the behaviour is defined otherwise (stale temp files
are removed and said). Small synthetic images in tmp_path; cheap restorers.
"""
from __future__ import annotations

import os
import struct
import subprocess
import time
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
import torch
from typer.testing import CliRunner

import restore
from restore.cli import app
from restore.errors import RestoreError
from restore.io import read_image, temp_path, write_image
from restore.operators.denoise import Denoise
from restore.pipeline import Pipeline
from restore.restorers import load

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_line(result, *words: str) -> str:
    """The one stderr line of a failed command, checked to hold ``words``."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".restore-" in p.name or ".tmp" in p.name or ".partial" in p.name]


def gray_png(path: Path, side: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 256, (side, side), dtype=np.uint8))
    return path


def float_tiff(path: Path, scale: float = 1.0, nan_at: tuple[int, int] | None = None, side: int = 32) -> Path:
    a = (np.random.default_rng(1).random((side, side)) * scale).astype(np.float32)
    if nan_at is not None:
        a[nan_at] = np.nan
    tifffile.imwrite(path, a)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height, with a tiny (never decoded) image stream."""
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture
def restorer_calls(monkeypatch) -> list[int]:
    """How many images went through Pipeline.run / run_batch (the restoring work)."""
    calls: list[int] = []
    for name in ("run", "run_batch"):
        original = getattr(Pipeline, name)

        def counted(self, y, _original=original):
            calls.append(y.shape[0])
            return _original(self, y)

        monkeypatch.setattr(Pipeline, name, counted)
    return calls


# ---------------------------------------------------------------- 1. non-finite pixels


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_1_nonfinite_pixels_are_refused_by_the_cli_with_count_and_place(tmp_path, bad):
    src = tmp_path / "nan.tif"
    a = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    a[10, 12] = a[20, 3] = bad
    tifffile.imwrite(src, a)
    out = tmp_path / "out.tif"
    error_line(invoke("denoise", src, "-o", out, "--sigma", 25), "nan.tif", "2 non-finite", "row 10, column 12")
    assert not out.exists() and not temp_files(tmp_path)


def test_1_nonfinite_pixels_are_refused_by_read_image_restorer_pipeline_and_run(tmp_path):
    src = float_tiff(tmp_path / "nan.tif", nan_at=(10, 10))
    with pytest.raises(RestoreError, match=r"1 non-finite pixel value .*row 10, column 10"):
        read_image(src)
    y = torch.rand(1, 1, 32, 32)
    y[0, 0, 5, 7] = float("inf")
    with pytest.raises(RestoreError, match=r"y: 1 non-finite .*row 5, column 7.*nan_to_num"):
        load("nlm").restore(y, Denoise(25 / 255))
    with pytest.raises(RestoreError, match=r"row 5, column 7"):
        Pipeline("nlm", Denoise(25 / 255), tile=0).run(y)
    report = restore.run(src, task="denoise", model="nlm", sigma=25 / 255, out_dir=tmp_path / "out", progress=False)
    assert report.failed == 1 and "non-finite" in report.failures[0]["error"]
    assert not (tmp_path / "out" / "nan.tif").exists()


# ---------------------------------------------------------------- 2. float data in 0-255


def test_2_float_tiff_in_0_255_is_refused_by_the_cli_naming_value_range(tmp_path):
    src, out = float_tiff(tmp_path / "f255.tif", scale=255), tmp_path / "out.tif"
    line = error_line(invoke("denoise", src, "-o", out, "--model", "nlm", "--sigma", 25), "expected [0, 1]")
    assert "--value-range 255" in line and "value_range=" not in line
    assert not out.exists()


def test_2_float_data_in_0_255_is_refused_in_python_naming_keywords(tmp_path):
    y = torch.rand(1, 1, 32, 32)
    with pytest.raises(RestoreError, match=r"expected \[0, 1\].*y / 255"):
        load("nlm").restore(y * 255, Denoise(25 / 255))
    with pytest.raises(RestoreError, match=r"x / 255"):
        Pipeline("bicubic", restore.operators.make_operator("sr", scale=2), tile=0)(y * 255)
    src = float_tiff(tmp_path / "f255.tif", scale=255)
    with pytest.raises(RestoreError, match=r"value_range=255"):
        read_image(src)
    report = restore.run(src, task="denoise", model="nlm", sigma=25 / 255, out_dir=tmp_path / "out", progress=False)
    assert report.failed == 1 and "value_range=255" in report.failures[0]["error"]


def test_2_unclipped_noisy_floats_are_accepted():
    """restore bench feeds unclipped Gaussian-noisy floats: noise takes them outside [0, 1], legitimately."""
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(1, 1, 32, 32)
    x[..., 16:] = 1.0
    y = x + torch.randn(x.shape, generator=g) * 50 / 255
    y[0, 0, 0, 0], y[0, 0, 0, 1] = -1.2, 2.2  # a rare 6-sigma draw at sigma 50
    assert load("nlm").restore(y, Denoise(50 / 255)).image.shape == y.shape


# ---------------------------------------------------------------- 3. --value-range


def test_3_value_range_applies_to_an_in_memory_tiff_and_keeps_its_units(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "scene12.tif"
    tifffile.imwrite(src, rng.integers(0, 4096, (48, 48)).astype(np.uint16))
    plain, ranged = tmp_path / "plain.tif", tmp_path / "ranged.tif"
    assert invoke("denoise", src, "-o", plain, "--model", "nlm", "--sigma", 10, "-q").exit_code == 0
    result = invoke("denoise", src, "-o", ranged, "--model", "nlm", "--sigma", 10, "--value-range", 4095, "-q")
    assert result.exit_code == 0, result.output
    a, b = tifffile.imread(plain), tifffile.imread(ranged)
    assert b.dtype == np.uint16 and b.max() <= 4095 and b.max() > 2000  # written back in 12-bit units
    assert not np.array_equal(a, b)
    report = restore.run(src, task="denoise", model="nlm", sigma=10 / 255, out_dir=tmp_path / "run", value_range=4095,
                         progress=False)
    assert report.done == 1 and np.array_equal(tifffile.imread(tmp_path / "run" / "scene12.tif"), b)


def test_3_value_range_applies_to_a_float_tiff_in_0_255(tmp_path):
    src, out = float_tiff(tmp_path / "f255.tif", scale=255), tmp_path / "out.tif"
    result = invoke("denoise", src, "-o", out, "--model", "nlm", "--sigma", 10, "--value-range", 255, "-q")
    assert result.exit_code == 0, result.output
    assert tifffile.imread(out).max() > 100  # 0-255 in, 0-255 out


@pytest.mark.parametrize("make, args, words", [
    (lambda d: gray_png(d / "a.png"), ["--value-range", 4095], "8-bit"),
    (lambda d: gray_png(d / "a.png"), ["--value-range", 255, "--bit-depth", 16], "--bit-depth"),
    (lambda d: gray_png(d / "a.png"), ["--value-range", 0], "--value-range"),
])
def test_3_value_range_is_refused_where_it_cannot_apply(tmp_path, make, args, words):
    out = tmp_path / "out.png"
    error_line(invoke("denoise", make(tmp_path), "-o", out, "--model", "nlm", "--sigma", 10, *args), words)
    assert not out.exists()


def test_3_value_range_refused_for_an_output_that_cannot_hold_it_before_restoring(tmp_path, restorer_calls):
    src = tmp_path / "scene12.tif"
    tifffile.imwrite(src, np.full((32, 32), 3000, np.uint16))
    out = tmp_path / "out.jpg"
    error_line(invoke("denoise", src, "-o", out, "--model", "nlm", "--sigma", 10, "--value-range", 4095), "8-bit")
    assert restorer_calls == [] and not out.exists()


# ---------------------------------------------------------------- 4. tiny tiles


def test_4_a_tile_smaller_than_the_halo_allows_is_refused(tmp_path):
    src = gray_png(tmp_path / "a.png", 128)
    out = tmp_path / "out.png"
    error_line(invoke("denoise", src, "-o", out, "--model", "nlm", "--sigma", 25, "--tile", 1), "--tile 1", "--tile 16")
    error_line(invoke("denoise", src, "-o", out, "--model", "lidia", "--sigma", 25, "--tile", 40), "halo 56")
    assert not out.exists()
    with pytest.raises(RestoreError, match="too small"):
        Pipeline("nlm", Denoise(0.1), tile=1)
    with pytest.raises(RestoreError, match="tile=1 is too small"):
        restore.run(src, task="denoise", model="nlm", sigma=25 / 255, out_dir=tmp_path / "o", tile=1, progress=False)


# ---------------------------------------------------------------- 5 and 7. folder runs


def test_5_any_per_file_error_is_recorded_and_the_folder_run_goes_on(tmp_path, monkeypatch):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    gray_png(folder / "a.png"), gray_png(folder / "c.png", seed=2)
    png_header_only(folder / "b_huge.png", 100000, 100000)
    gray_png(folder / "d_bug.png", seed=3)
    original = Pipeline.run_batch  # the CLI runs restore.run, which batches images of one size
    target = float(read_image(folder / "d_bug.png").pixels.mean())

    def breaks_on_d(self, y):
        if any(float(image.mean()) == target for image in y):
            raise RuntimeError("something not of the project's own type")
        return original(self, y)

    monkeypatch.setattr(Pipeline, "run_batch", breaks_on_d)
    result = invoke("denoise", folder, "-o", out, "--model", "nlm", "--sigma", 25, "-q")
    assert result.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png", "restore-log.jsonl"]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith(f"error: {folder / 'b_huge.png'}: 100000 x 100000") and "--max-pixels" in lines[0]
    assert lines[1].startswith(f"error: {folder / 'd_bug.png'}: unexpected RuntimeError")
    assert lines[2] == "error: 2 of 4 images failed (each named above)" and len(lines) == 3


def test_5_restore_run_records_any_error_and_goes_on(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in "abc":
        gray_png(folder / f"{name}.png", seed=ord(name))
    original = Pipeline.run_batch

    target = float(read_image(folder / "b.png").pixels.mean())

    def breaks(self, y):
        if any(float(image.mean()) == target for image in y):  # the group fails, then b alone (one by one)
            raise RuntimeError("boom")
        return original(self, y)

    monkeypatch.setattr(Pipeline, "run_batch", breaks)
    report = restore.run(folder, task="denoise", model="nlm", sigma=25 / 255, out_dir=tmp_path / "out", progress=False)
    assert (report.done, report.failed) == (2, 1) and report.failures[0]["input"].endswith("b.png")


def test_7_folder_errors_go_to_stderr_naming_the_path_once(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    good = gray_png(folder / "good.png")
    (folder / "bad.png").write_bytes(good.read_bytes()[:100])
    result = invoke("denoise", folder, "-o", out, "--model", "nlm", "--sigma", 25, "-q")
    assert result.exit_code == 1 and result.stdout.strip() == ""
    bad_line = next(line for line in result.stderr.splitlines() if "bad.png" in line)
    assert bad_line == f"error: {folder / 'bad.png'}: truncated PNG (file ends before the IEND chunk)"


def test_7_folder_output_equal_to_the_input_is_refused_once_before_loading_the_model(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        gray_png(folder / f"{i}.png", seed=i)
    monkeypatch.setattr("restore.commands.restore_images.load", lambda *a, **k: pytest.fail("model loaded"))
    error_line(invoke("denoise", folder, "-o", folder, "--model", "nlm", "--sigma", 25), "is the input folder")


# ---------------------------------------------------------------- 6. output problems, before any restoration


def test_6_an_unwritable_output_is_refused_before_restoring_naming_the_output(tmp_path, restorer_calls):
    src = gray_png(tmp_path / "a.png")
    (tmp_path / "afile").write_text("x")
    line = error_line(invoke("denoise", src, "-o", tmp_path / "afile" / "out.png", "--model", "nlm", "--sigma", 25),
                      "afile")
    assert ".tmp" not in line and ".restore-" not in line and restorer_calls == []


@pytest.mark.parametrize("make, out_name, words", [
    (lambda d: float_tiff(d / "f.tif"), "out.png", "PNG holds 8 or 16 bits"),
    (lambda d: tifffile.imwrite(d / "m.tif", np.zeros((32, 32, 4), np.uint8), planarconfig="contig",
                                photometric="minisblack") or d / "m.tif", "out.png", "color channels"),
    (lambda d: gray_png(d / "a.png"), "out.png", "--bit-depth"),
])
def test_6_a_format_that_cannot_hold_the_result_is_refused_before_restoring(tmp_path, restorer_calls, make,
                                                                               out_name, words):
    args = ["--bit-depth", 32] if words == "--bit-depth" else []
    out = tmp_path / out_name
    error_line(invoke("denoise", make(tmp_path), "-o", out, "--model", "nlm", "--sigma", 25, *args), words)
    assert restorer_calls == [] and not out.exists()


def test_6_output_equal_to_the_input_is_refused(tmp_path):
    src = gray_png(tmp_path / "a.png")
    before = src.read_bytes()
    error_line(invoke("denoise", src, "-o", src, "--model", "nlm", "--sigma", 25, "--overwrite"), "is the input")
    assert src.read_bytes() == before


# ---------------------------------------------------------------- 8. temp files


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_8_temp_files_have_recognisable_names(tmp_path):
    name = temp_path(tmp_path / "photo.png").name
    assert name.startswith(".photo.png.restore-") and f"-{os.getpid()}-" in name and name.endswith(".tmp.png")


def test_8_stale_temp_files_of_a_runs_outputs_are_removed_and_said(tmp_path):
    src, out_dir = gray_png(tmp_path / "a.png"), tmp_path / "out"
    out_dir.mkdir()
    stale = out_dir / f".a.png.restore-{_dead_pid()}-0123abcd.tmp.png"
    live = out_dir / f".a.png.restore-1-0123abcd.tmp.png"  # pid 1 is alive: another run's write in progress
    other = out_dir / f".b.png.restore-{_dead_pid()}-0123abcd.tmp.png"  # not an output of this run
    for f in (stale, live, other):
        f.write_bytes(b"partial")
        os.utime(f, (time.time() - 60, time.time() - 60))
    result = invoke("denoise", src, "-o", out_dir / "a.png", "--model", "nlm", "--sigma", 25)
    assert result.exit_code == 0, result.output
    assert f"removed {stale}" in result.stderr
    assert not stale.exists() and live.exists() and other.exists() and (out_dir / "a.png").exists()
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 60, time.time() - 60))
    report = restore.run(src, task="denoise", model="nlm", sigma=25 / 255, out_dir=out_dir, overwrite=True, progress=False)
    assert report.removed == [stale] and not stale.exists()


def test_8_a_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken(fh, color, alpha):
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("restore.io.tiff_codec.write", broken)
    with pytest.raises(RestoreError, match="No space left"):
        write_image(tmp_path / "o.tif", torch.rand(1, 1, 8, 8))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- 9. restore.run and changed settings


def test_9_restore_run_refuses_outputs_made_with_other_settings_unless_overwrite(tmp_path, restorer_calls):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(2):
        gray_png(folder / f"{i}.png", seed=i)
    assert restore.run(folder, task="denoise", model="nlm", sigma=20 / 255, out_dir=out, progress=False).done == 2
    first = (out / "0.png").read_bytes()
    with pytest.raises(RestoreError, match=r"2 existing output\(s\).*sigma 0.0784\d* -> 0.1176\d*.*overwrite=True"):
        restore.run(folder, task="denoise", model="nlm", sigma=30 / 255, out_dir=out, progress=False)
    with pytest.raises(RestoreError, match=r"seed 0 -> 1"):
        restore.run(folder, task="denoise", model="nlm", sigma=20 / 255, seed=1, out_dir=out, progress=False)
    restorer_calls.clear()
    assert restore.run(folder, task="denoise", model="nlm", sigma=20 / 255, out_dir=out, progress=False).skipped == 2
    assert restorer_calls == []
    redone = restore.run(folder, task="denoise", model="nlm", sigma=30 / 255, out_dir=out, overwrite=True, progress=False)
    assert redone.done == 2 and (out / "0.png").read_bytes() != first
    assert restore.run(folder, task="denoise", model="nlm", sigma=30 / 255, out_dir=out, progress=False).skipped == 2


# ---------------------------------------------------------------- 10. decompression bombs


def test_10_a_huge_png_is_refused_from_its_header(tmp_path):
    bomb = png_header_only(tmp_path / "bomb.png", 20000, 20000)
    out = tmp_path / "out.png"
    error_line(invoke("denoise", bomb, "-o", out, "--model", "nlm", "--sigma", 25), "20000 x 20000", "--max-pixels")
    with pytest.raises(RestoreError, match=r"20000 x 20000.*max_pixels="):
        read_image(bomb)
    assert not out.exists()


def test_10_the_pixel_limit_is_an_option_for_every_format(tmp_path):
    src = gray_png(tmp_path / "a.png", 64)
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((64, 64), np.uint8))
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((64, 64), np.uint8))
    cv2.imwrite(str(tmp_path / "a.bmp"), np.zeros((64, 64), np.uint8))
    for name in ("a.png", "a.jpg", "a.tif", "a.bmp"):
        with pytest.raises(RestoreError, match="64 x 64"):
            read_image(tmp_path / name, max_pixels=1000)
        assert read_image(tmp_path / name, max_pixels=None).pixels.shape[-2:] == (64, 64)
    out = tmp_path / "out.png"
    error_line(invoke("denoise", src, "-o", out, "--model", "nlm", "--sigma", 25, "--max-pixels", 1000), "64 x 64")
    assert invoke("denoise", src, "-o", out, "--model", "nlm", "--sigma", 25, "--max-pixels", 0).exit_code == 0
    report = restore.run(src, task="denoise", model="nlm", sigma=25 / 255, out_dir=tmp_path / "o", max_pixels=1000,
                         progress=False)
    assert report.failed == 1 and "max_pixels=" in report.failures[0]["error"]


def test_10_streamed_geotiffs_are_exempt(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    src = tmp_path / "geo.tif"
    with rasterio.open(src, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8", crs="EPSG:32631",
                       transform=from_origin(0, 0, 10, 10)) as dst:
        dst.write(np.random.default_rng(0).integers(0, 256, (1, 64, 64), dtype=np.uint8))
    out = tmp_path / "out.tif"
    result = invoke("denoise", src, "-o", out, "--model", "nlm", "--sigma", 25, "--max-pixels", 100, "-q")
    assert result.exit_code == 0, result.output
    assert out.exists()


# ---------------------------------------------------------------- 11. the smaller points


def test_11_sigma_0_is_not_silently_estimate(tmp_path):
    src = gray_png(tmp_path / "a.png")
    error_line(invoke("denoise", src, "-o", tmp_path / "o.png", "--sigma", 0), "--sigma 0", "leave --sigma out")
    with pytest.raises(RestoreError, match=r"^sigma 0 means .* leave sigma out"):
        restore.run(src, task="denoise", model="nlm", sigma=0, out_dir=tmp_path / "o", progress=False)


def test_11_sigma_300_gets_the_cli_units_message(tmp_path):
    line = error_line(invoke("denoise", gray_png(tmp_path / "a.png"), "-o", tmp_path / "o.png", "--sigma", 300),
                      "--sigma", "[0, 255]", "0-255 units")
    assert "25/255" not in line and "[0, 1]" not in line


def test_11_a_corrupt_tiff_header_gives_one_line_and_no_log_line(tmp_path):
    src = tmp_path / "bad.tif"
    tifffile.imwrite(src, np.zeros((32, 32), np.uint8))
    data = src.read_bytes()
    src.write_bytes(data[:4] + b"\xff\xff\x00\x00" + data[8:])  # the first IFD points past the end
    error_line(invoke("denoise", src, "-o", tmp_path / "o.png", "--model", "nlm", "--sigma", 25), "corrupt")


def test_11_a_jpeg_corrupted_in_the_middle_is_refused_without_a_libjpeg_line(tmp_path):
    from skimage import data

    ok, buf = cv2.imencode(".jpg", data.astronaut()[:128, :128])
    damaged = bytearray(buf.tobytes())
    middle = (damaged.rfind(b"\xff\xda") + len(damaged)) // 2
    damaged[middle : middle + 200] = bytes(200)
    src, out = tmp_path / "bad.jpg", tmp_path / "o.png"
    src.write_bytes(bytes(damaged))
    error_line(invoke("denoise", src, "-o", out, "--model", "nlm", "--sigma", 25), "corrupt JPEG data")
    assert not out.exists()


def test_11_the_streamed_path_creates_the_output_folder_and_warns_nothing(tmp_path):
    src = tmp_path / "plain.tif"
    tifffile.imwrite(src, np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8))
    out = tmp_path / "new" / "folder" / "out.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Pipeline("nlm", Denoise(0.1), tile=0).restore_file(src, out)
    assert out.exists() and not temp_files(tmp_path)


def test_11_flags_show_no_value_in_help():
    result = invoke("denoise", "--help")
    assert result.exit_code == 0 and "<bool>" not in result.output and "--overwrite" in result.output


# ---------------------------------------------------------------- the bar


def _bar_folder(folder: Path) -> set[str]:
    """20 images: 15 good, and five bad ones of five kinds; the names of the bad ones."""
    folder.mkdir()
    for i in range(15):
        gray_png(folder / f"good{i:02d}.png", 24, seed=i)
    (folder / "bad_truncated.png").write_bytes((folder / "good00.png").read_bytes()[:120])
    (folder / "bad_text.png").write_text("not an image\n")
    float_tiff(folder / "bad_nan.tif", nan_at=(3, 4), side=24)
    float_tiff(folder / "bad_0_255.tif", scale=255, side=24)
    png_header_only(folder / "bad_bomb.png", 20000, 20000)
    return {str(folder / n) for n in ("bad_truncated.png", "bad_text.png", "bad_nan.tif", "bad_0_255.tif",
                                      "bad_bomb.png")}


def test_bar_twenty_images_five_bad_kinds_cli(tmp_path, restorer_calls):
    folder, out = tmp_path / "in", tmp_path / "out"
    bad = _bar_folder(folder)
    result = invoke("denoise", folder, "-o", out, "--model", "nlm", "--sigma", 20, "-q")
    assert result.exit_code == 1
    assert len(list(out.iterdir())) == 15 + 1 and (out / "restore-log.jsonl").is_file() and not temp_files(out)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    named = {line.removeprefix("error: ").split(": ")[0] for line in lines[:-1]}
    assert named == bad and len(lines) == 6 and lines[-1] == "error: 5 of 20 images failed (each named above)"
    assert sum(restorer_calls) == 15  # images of one size share restorer calls (batch_size 8)
    images = [p for p in out.iterdir() if p.suffix == ".png"]
    mtimes = {p: p.stat().st_mtime_ns for p in images}
    restorer_calls.clear()
    again = invoke("denoise", folder, "-o", out, "--model", "nlm", "--sigma", 20, "-q")
    assert again.exit_code == 1 and restorer_calls == []  # no work: the good ones exist, the bad fail on reading
    assert {p: p.stat().st_mtime_ns for p in images} == mtimes  # only the log grew


def test_bar_twenty_images_five_bad_kinds_python(tmp_path, restorer_calls):
    folder, out = tmp_path / "in", tmp_path / "out"
    bad = _bar_folder(folder)
    report = restore.run(folder, task="denoise", model="nlm", sigma=20 / 255, out_dir=out, progress=False)
    assert (report.done, report.failed) == (15, 5) and {r["input"] for r in report.failures} == bad
    assert len([p for p in out.iterdir() if p.suffix != ".jsonl"]) == 15
    restorer_calls.clear()
    again = restore.run(folder, task="denoise", model="nlm", sigma=20 / 255, out_dir=out, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 15, 5) and restorer_calls == []


def test_1_nodata_pixels_of_a_streamed_geotiff_are_not_refused(tmp_path):
    """NaN or -9999 nodata is the file saying "no value here": it stays nodata, and is neither NaN-spread nor refused."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    for nodata in (np.nan, -9999.0):
        src, out = tmp_path / f"geo{nodata}.tif", tmp_path / f"out{nodata}.tif"
        a = np.random.default_rng(0).random((1, 48, 48)).astype(np.float32)
        a[0, :5, :5] = nodata
        with rasterio.open(src, "w", driver="GTiff", width=48, height=48, count=1, dtype="float32", nodata=nodata,
                           crs="EPSG:32631", transform=from_origin(0, 0, 10, 10)) as dst:
            dst.write(a)
        assert invoke("denoise", src, "-o", out, "--model", "nlm", "--sigma", 10, "-q").exit_code == 0
        with rasterio.open(out) as r:
            b = r.read(1)
        assert np.isfinite(b[10:, 10:]).all() and (np.isnan(b[:5, :5]).all() if np.isnan(nodata) else (b[:5, :5] == nodata).all())
