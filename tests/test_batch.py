"""restore.run: a batch job over globs, folders, lists and arrays; resumable, logged, batched like one by one."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import restore
from restore.errors import RestoreError
from restore.io import from_numpy_image, read_image, write_image
from restore.operators import Denoise, Downsample
from restore.pipeline import Pipeline
from restore.restorers.base import Restoration, Restorer
from restore.restorers.bicubic import BicubicRestorer
from restore.restorers.nlm import NLMRestorer

from conftest import psnr

SIDE = 32


def _crops(count: int, side: int = SIDE, noise: float = 0.0) -> list[np.ndarray]:
    """``count`` side x side RGB crops of scikit-image's astronaut (uint8), with Gaussian noise of ``noise``/255."""
    from skimage import data

    img = data.astronaut()
    rng = np.random.default_rng(0)
    per_row = img.shape[1] // side
    out = []
    for k in range(count):
        r, c = (k // per_row) * side, (k % per_row) * side
        crop = img[r : r + side, c : c + side].astype(np.float64)
        out.append(np.clip(crop + rng.normal(0, noise, crop.shape), 0, 255).round().astype(np.uint8))
    return out


def _write(path: Path, array: np.ndarray) -> Path:
    write_image(path, from_numpy_image(array), bit_depth=16 if array.dtype == np.uint16 else 8)
    return path


def _tree(root: Path, count: int, folders: int = 3) -> list[Path]:
    """``count`` PNGs spread over ``folders`` sub-folders of ``root`` (0: in ``root`` itself)."""
    folder = (lambda k: root / f"set{k % folders}") if folders else (lambda k: root)
    return [_write(folder(k) / f"img{k:03d}.png", a) for k, a in enumerate(_crops(count, noise=20))]


def _outputs(out_dir: Path) -> list[Path]:
    return sorted(p for p in out_dir.rglob("*.png"))


def _log(report: restore.BatchReport) -> list[dict]:
    return [json.loads(line) for line in report.log.read_text().splitlines()]


@pytest.fixture
def calls(monkeypatch) -> list[int]:
    """Batch sizes of every nlm and bicubic restorer call."""
    seen: list[int] = []
    for cls in (NLMRestorer, BicubicRestorer):
        original = cls._restore

        def counted(self, y, operator, *, generator, _original=original):
            seen.append(y.shape[0])
            return _original(self, y, operator, generator=generator)

        monkeypatch.setattr(cls, "_restore", counted)
    return seen


# ---------------------------------------------------------------- the bar


def test_fifty_images_with_three_corrupt_then_a_rerun_does_nothing(tmp_path, calls):
    photos, out = tmp_path / "photos", tmp_path / "out"
    good = _tree(photos, 47)
    truncated = photos / "set1" / "truncated.png"
    truncated.write_bytes(good[0].read_bytes()[:200])
    (photos / "set2" / "text.png").write_text("not an image\n")
    (photos / "empty.png").write_bytes(b"")
    bad = {str(truncated), str(photos / "set2" / "text.png"), str(photos / "empty.png")}

    report = restore.run(f"{photos}/**/*.png", task="denoise", model="nlm", sigma=20 / 255, out_dir=out, progress=False)

    assert (report.done, report.skipped, report.failed) == (47, 0, 3)
    assert len(_outputs(out)) == 47
    records = _log(report)
    assert len(records) == 50 and records == report.records
    assert {r["input"] for r in records if r["status"] == "failed"} == bad
    assert all(r["error"] and "\n" not in r["error"] for r in report.failures)
    assert all(r["sigma"] == round(20 / 255, 6) and r["model"] == "nlm" and r["task"] == "denoise" for r in records if r["status"] == "done")
    assert sum(calls) == 47 and max(calls) > 1  # every good image restored once, several per call

    mtimes = {p: p.stat().st_mtime_ns for p in _outputs(out)}
    calls.clear()
    again = restore.run(f"{photos}/**/*.png", task="denoise", model="nlm", sigma=20 / 255, out_dir=out, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 47, 3)  # the failed ones are retried (and fail again)
    assert calls == []
    assert {p: p.stat().st_mtime_ns for p in _outputs(out)} == mtimes
    assert len(_log(again)) == 100  # appended


def test_a_fixed_input_is_retried_on_the_next_run(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    _tree(photos, 3)
    (photos / "set0" / "late.png").write_text("still uploading")
    first = restore.run(photos / "**" / "*.png", task="sr", model="bicubic", scale=2, out_dir=out, progress=False)
    assert (first.done, first.failed) == (3, 1)
    (photos / "set0" / "late.png").unlink()
    _write(photos / "set0" / "late.png", _crops(1)[0])
    second = restore.run(photos / "**" / "*.png", task="sr", model="bicubic", scale=2, out_dir=out, progress=False)
    assert (second.done, second.skipped, second.failed) == (1, 3, 0)
    assert read_image(out / "set0" / "late.png").pixels.shape[-2:] == (2 * SIDE, 2 * SIDE)


def test_a_killed_run_keeps_what_finished(tmp_path, monkeypatch):
    photos, out = tmp_path / "photos", tmp_path / "out"
    _tree(photos, 5, folders=0)
    original, count = BicubicRestorer._restore, []

    def dies_on_the_fourth(self, y, operator, *, generator):
        count.append(1)
        if len(count) == 4:
            raise KeyboardInterrupt
        return original(self, y, operator, generator=generator)

    monkeypatch.setattr(BicubicRestorer, "_restore", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        restore.run(photos, task="sr", model="bicubic", scale=2, out_dir=out, batch_size=1, progress=False)
    lines = (out / "restore-log.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["done"] * 3
    monkeypatch.setattr(BicubicRestorer, "_restore", original)
    rest = restore.run(photos, task="sr", model="bicubic", scale=2, out_dir=out, batch_size=1, progress=False)
    assert (rest.done, rest.skipped) == (2, 3)


# ---------------------------------------------------------------- kinds of inputs


def test_glob_keeps_subfolders_so_equal_names_do_not_collide(tmp_path):
    a, b = _crops(2)
    _write(tmp_path / "in" / "x" / "a.png", a)
    _write(tmp_path / "in" / "y" / "a.png", b)
    report = restore.run(str(tmp_path / "in" / "**" / "*.png"), task="sr", model="bicubic", scale=2,
                         out_dir=tmp_path / "out", progress=False)
    assert report.done == 2
    assert [p.relative_to(tmp_path / "out").as_posix() for p in _outputs(tmp_path / "out")] == ["x/a.png", "y/a.png"]


def test_relative_glob(tmp_path, monkeypatch):
    _tree(tmp_path / "photos", 2, folders=2)
    monkeypatch.chdir(tmp_path)
    report = restore.run("photos/**/*.png", task="sr", model="bicubic", scale=2, out_dir="out", progress=False)
    assert report.done == 2 and report.records[0]["input"].startswith("photos")
    assert (tmp_path / "out" / "set0" / "img000.png").is_file()


def test_folder_input_takes_the_images_in_it(tmp_path):
    folder = tmp_path / "in"
    _write(folder / "one.png", _crops(1)[0])
    _write(folder / "deeper" / "two.png", _crops(1)[0])  # a folder is not recursive
    (folder / "notes.txt").write_text("not an image")
    report = restore.run(folder, task="sr", model="bicubic", scale=2, out_dir=tmp_path / "out", progress=False)
    assert report.done == 1 and (tmp_path / "out" / "one.png").is_file()


def test_single_path_and_list_of_paths(tmp_path):
    a, b = (_write(tmp_path / "in" / n, c) for n, c in zip(("a.png", "b.png"), _crops(2)))
    one = restore.run(a, task="sr", model="bicubic", scale=2, out_dir=tmp_path / "one", progress=False)
    assert one.done == 1 and (tmp_path / "one" / "a.png").is_file()
    both = restore.run([str(a), b, tmp_path / "missing.png"], task="sr", model="bicubic", scale=2,
                       out_dir=tmp_path / "two", progress=False)
    assert (both.done, both.failed) == (2, 1) and "not found" in both.failures[0]["error"]


def test_arrays_are_numbered_pngs_keeping_16_bits(tmp_path):
    rgb, gray = _crops(1)[0], _crops(1)[0][:, :, 1]
    deep = gray.astype(np.uint16) * 257
    tensor = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    images = iter([rgb, deep, gray.astype(np.float32) / 255, tensor, np.zeros((8, 8, 5), np.uint8)])
    report = restore.run(images, task="sr", model="bicubic", scale=2, out_dir=tmp_path, progress=False)
    assert (report.done, report.failed) == (4, 1) and report.failures[0]["input"] == "array[4]"
    outs = [read_image(tmp_path / f"image_{k:05d}.png") for k in range(4)]
    assert [o.bit_depth for o in outs] == [8, 16, 8, 8]
    assert [o.pixels.shape[1] for o in outs] == [3, 1, 1, 3]
    expected = Pipeline("bicubic", Downsample(2))(from_numpy_image(rgb))
    assert torch.equal(outs[0].pixels, (expected.clamp(0, 1) * 255).round() / 255)
    assert torch.equal(outs[0].pixels, outs[3].pixels)


def test_a_batch_tensor_is_many_images(tmp_path):
    x = torch.rand(3, 1, 24, 24)
    report = restore.run(x, task="sr", model="bicubic", scale=2, out_dir=tmp_path, progress=False)
    assert report.done == 3
    with pytest.raises(RestoreError, match="single"):
        restore.run(np.zeros((24, 24), np.uint8), task="sr", model="bicubic", out_dir=tmp_path, progress=False)


def test_keeps_bit_depth_and_alpha(tmp_path):
    rgba = np.dstack([_crops(1)[0].astype(np.uint16) * 257, np.arange(SIDE * SIDE, dtype=np.uint16).reshape(SIDE, SIDE)])
    src = tmp_path / "in" / "rgba.png"
    write_image(src, from_numpy_image(rgba[:, :, :3]), bit_depth=16, alpha=rgba[:, :, 3])
    restore.run(src, task="denoise", model="nlm", sigma=10 / 255, out_dir=tmp_path / "out", progress=False)
    out = read_image(tmp_path / "out" / "rgba.png")
    assert out.bit_depth == 16 and np.array_equal(out.alpha, rgba[:, :, 3])


# ---------------------------------------------------------------- batching


class _Jitter(Restorer):
    """A stochastic restorer: y plus noise from the pipeline's positional source."""

    name = "jitter"
    tasks = ("denoise",)
    stochastic = True
    halo = 0

    def _restore(self, y, operator, *, generator, noise):
        return Restoration(image=y + 0.05 * noise.randn(y.shape, device=y.device))


@pytest.mark.parametrize("restorer, operator", [
    ("nlm", Denoise(sigma=25 / 255)),
    ("bicubic", Downsample(2)),
    (_Jitter(), Denoise(sigma=0.1)),
])
def test_run_batch_equals_one_by_one(restorer, operator):
    y = torch.stack([torch.from_numpy(c).permute(2, 0, 1).float() / 255 for c in _crops(5, side=64)])
    pipe = Pipeline(restorer, operator, tile=16, batch_size=3)
    together, alone = pipe.run_batch(y).image, pipe.run(y).image
    assert together.shape == alone.shape == (5, 3, 64 * pipe.upscale, 64 * pipe.upscale)
    assert torch.equal(together, alone)


class _PerImage(Restorer):
    """A restorer whose ``prepare`` makes an image its own copy (as LIDIA's does): images cannot share calls."""

    name = "per-image"
    tasks = ("denoise",)

    def __init__(self):
        self.calls: list[int] = []

    def prepare(self, sample, operator, *, generator=None):
        return copy.copy(self), operator

    def _restore(self, y, operator, *, generator):
        self.calls.append(y.shape[0])
        return Restoration(image=y.flip(-1))


def test_run_batch_shares_calls_only_when_preparing_changes_nothing():
    y = torch.rand(3, 1, 16, 16)
    per_image = _PerImage()
    assert torch.equal(Pipeline(per_image, Denoise(sigma=0.1), tile=0).run_batch(y).image, y.flip(-1))
    assert per_image.calls == [1, 1, 1]
    per_image.prepare = lambda sample, operator, generator=None: (per_image, operator)
    assert torch.equal(Pipeline(per_image, Denoise(sigma=0.1), tile=0).run_batch(y).image, y.flip(-1))
    assert per_image.calls[3:] == [3]


def test_batched_files_equal_one_by_one(tmp_path, calls):
    _tree(tmp_path / "in", 10, folders=0)
    batched = restore.run(tmp_path / "in", task="denoise", model="nlm", sigma=20 / 255, out_dir=tmp_path / "b8",
                          batch_size=8, progress=False)
    assert calls == [8, 2]
    calls.clear()
    single = restore.run(tmp_path / "in", task="denoise", model="nlm", sigma=20 / 255, out_dir=tmp_path / "b1",
                         batch_size=1, progress=False)
    assert calls == [1] * 10 and batched.done == single.done == 10
    for p in _outputs(tmp_path / "b8"):
        assert p.read_bytes() == (tmp_path / "b1" / p.name).read_bytes()


def test_estimated_sigmas_are_each_images_own(tmp_path, calls):
    images = _crops(3, side=64, noise=15)
    report = restore.run(images, task="denoise", model="nlm", out_dir=tmp_path, progress=False)
    sigmas = [r["sigma"] for r in report.records]
    assert calls == [1, 1, 1]  # different operators: no shared calls
    assert all(10 / 255 < s < 22 / 255 for s in sigmas) and len(set(sigmas)) == 3  # [0, 1] units, as the API takes


class _FillHoles(Restorer):
    """A deterministic inpainter: the holes become 0.5, so an output shows the mask it was given."""

    name = "fill-holes"
    tasks = ("inpaint",)
    calls: list[int] = []

    def __init__(self, device="cpu", **_):
        self.device = torch.device(device)

    def _restore(self, y, operator, *, generator):
        _FillHoles.calls.append(y.shape[0])
        observed = operator.forward(torch.ones_like(y))
        return Restoration(image=y * observed + (1 - observed) * 0.5)


@pytest.fixture
def fill_holes(monkeypatch) -> list[int]:
    """Register ``_FillHoles`` for one test; the batch sizes of its calls."""
    from restore.restorers import base

    monkeypatch.setitem(base._REGISTRY, _FillHoles.name, _FillHoles)
    monkeypatch.setitem(base._TASKS, _FillHoles.name, _FillHoles.tasks)
    monkeypatch.setattr(_FillHoles, "calls", [])
    return _FillHoles.calls


def test_masks_a_file_mask_is_shared_a_random_one_is_each_images_own(tmp_path, fill_holes):
    images = [np.full((SIDE, SIDE), 200, np.uint8)] * 3
    mask = np.zeros((SIDE, SIDE), np.uint8)
    mask[:, : SIDE // 2] = 255
    _write(tmp_path / "mask.png", mask)
    shared = restore.run(images, task="inpaint", model="fill-holes", mask=tmp_path / "mask.png", out_dir=tmp_path / "f",
                         progress=False)
    assert shared.done == 3 and fill_holes == [3]
    holes = [read_image(p).pixels[0, 0] != 200 / 255 for p in _outputs(tmp_path / "f")]
    assert all(torch.equal(h, torch.from_numpy(mask == 0)) for h in holes)

    kwargs = {"task": "inpaint", "model": "fill-holes", "mask": "random:0.5", "out_dir": tmp_path / "r",
              "overwrite": True, "progress": False}
    restore.run(images, **kwargs)
    first = [p.read_bytes() for p in _outputs(tmp_path / "r")]
    again = restore.run(images, **kwargs)
    assert again.done == 3 and fill_holes[1:] == [1] * 6  # one mask per image: no shared calls
    assert [p.read_bytes() for p in _outputs(tmp_path / "r")] == first  # drawn from (seed, name): the same each run
    holes = [read_image(p).pixels[0, 0] != 200 / 255 for p in _outputs(tmp_path / "r")]
    assert not torch.equal(holes[0], holes[1])


def test_lidia_smoke(tmp_path):
    from skimage import data

    clean = data.camera()[100:164, 200:264]
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
    report = restore.run([noisy], task="denoise", model="lidia", sigma=25 / 255, out_dir=tmp_path, progress=False)
    assert report.done == 1
    out = read_image(tmp_path / "image_00000.png").pixels
    ref = from_numpy_image(clean)
    assert psnr(out, ref) > psnr(from_numpy_image(noisy), ref) + 3


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("options, message", [
    ({"model": "nope"}, "unknown model"),
    ({"task": "colorize"}, "task must be one of"),
    ({"model": "bicubic"}, "does not support denoise"),
    ({"sigma": -5}, "sigma"),
    ({"sigma": "25"}, "sigma must be a number"),
    ({"batch_size": 0}, "batch_size"),
    ({"tile": -1}, "tile"),
    ({"precision": "fp8"}, "precision"),
    ({"device": "tpu"}, "device"),
    ({"mask": "random:0.5"}, "inpaint"),
    ({"kernel": "gaussian:2"}, "kernel"),
    ({"lam": 0.1}, "has no option 'lam'; its options: color"),
    ({"color": "yuv"}, "must be one of rgb, lab"),
    ({"sigma": 25}, r"sigma must be a number in \[0, 1\]"),
    ({"log": "log.png"}, "JSON-lines"),
])
def test_bad_options_raise_before_any_output(tmp_path, options, message):
    _tree(tmp_path / "in", 2)
    kwargs = {"task": "denoise", "model": "nlm", "sigma": 20 / 255, "out_dir": tmp_path / "out", "progress": False, **options}
    with pytest.raises(RestoreError, match=message):
        restore.run(tmp_path / "in" / "**" / "*.png", **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options", [
    {"sigma": -5},
    {"task": "deblur", "model": "vble", "kernel": "gaussian:x"},
    {"task": "inpaint", "model": "vble", "mask": "random:half"},
    {"task": "inpaint", "model": "vble"},
])
def test_option_errors_name_keywords_not_cli_flags(tmp_path, options):
    _tree(tmp_path / "in", 1)
    kwargs = {"task": "denoise", "model": "nlm", "sigma": 20 / 255, "out_dir": tmp_path / "out", "progress": False, **options}
    with pytest.raises(RestoreError) as raised:
        restore.run(tmp_path / "in", **kwargs)
    assert "--" not in str(raised.value), str(raised.value)


@pytest.mark.parametrize("inputs, message", [
    ("nothing/**/*.png", "no images"),
    ("missing.png", "not found"),
    (42, "inputs must be"),
])
def test_bad_inputs_raise_before_any_output(tmp_path, monkeypatch, inputs, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RestoreError, match=message):
        restore.run(inputs, task="sr", model="bicubic", out_dir="out", progress=False)
    assert not (tmp_path / "out").exists()


def test_never_overwrites_an_input(tmp_path):
    folder = tmp_path / "in"
    paths = _tree(folder, 2, folders=0)
    before = [p.read_bytes() for p in paths]
    for overwrite in (False, True):
        with pytest.raises(RestoreError, match="overwrite the input|is the input"):
            restore.run(folder, task="denoise", model="nlm", sigma=20 / 255, out_dir=folder,
                        overwrite=overwrite, progress=False)
    with pytest.raises(RestoreError, match="would both be written"):
        restore.run([paths[0], tmp_path / "other" / paths[0].name], task="denoise", model="nlm", sigma=20 / 255,
                    out_dir=tmp_path / "out", progress=False)
    assert [p.read_bytes() for p in paths] == before


def test_outputs_inside_the_glob_are_not_inputs_next_time(tmp_path):
    photos = tmp_path / "photos"
    _tree(photos, 2, folders=0)
    kwargs = {"task": "sr", "model": "bicubic", "scale": 2, "out_dir": photos / "restored", "progress": False}
    first = restore.run(photos / "**" / "*.png", **kwargs)
    second = restore.run(photos / "**" / "*.png", **kwargs)
    assert first.done == 2 and (second.done, second.skipped) == (0, 2)


def test_overwrite_redoes_existing_outputs(tmp_path, calls):
    _tree(tmp_path / "in", 2, folders=0)
    kwargs = {"task": "sr", "model": "bicubic", "scale": 2, "out_dir": tmp_path / "out", "progress": False}
    restore.run(tmp_path / "in", **kwargs)
    again = restore.run(tmp_path / "in", overwrite=True, **kwargs)
    assert again.done == 2 and str(again) == f"2 done, 0 skipped, 0 failed (log: {tmp_path / 'out' / 'restore-log.jsonl'})"
