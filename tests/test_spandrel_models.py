"""Community models through spandrel: tiny random-weight ESRGAN (SR x2), Compact (SR x4) and DnCNN (scale 1)
saved as files, loaded by path, run through the pipeline, the CLI on 16-bit GeoTIFFs, the bench and deep OT."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

spandrel = pytest.importorskip("spandrel", reason="spandrel is an optional extra: pip install -e '.[models]'")

from safetensors.torch import save_file  # noqa: E402
from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.DnCNN import DnCNN  # noqa: E402
from spandrel.architectures.DRUNet import DRUNet  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import restore  # noqa: E402
from restore.cli import app  # noqa: E402
from restore.errors import RestoreError  # noqa: E402
from restore.operators.blur import Blur  # noqa: E402
from restore.operators.denoise import Denoise  # noqa: E402
from restore.operators.downsample import Downsample  # noqa: E402
from restore.operators.inpaint import Inpaint  # noqa: E402
from restore.pipeline import Pipeline  # noqa: E402
from restore.restorers.spandrel_model import INSTALL_HINT  # noqa: E402

SIGMA = 0.05


def _save(net: torch.nn.Module, path: Path) -> Path:
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Small random-weight models of three architectures spandrel detects from their state dicts."""
    folder = tmp_path_factory.mktemp("spandrel")
    torch.manual_seed(0)
    return {
        "esrgan": _save(ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=1, scale=2), folder / "esrgan_x2.safetensors"),
        "compact": _save(Compact(num_in_ch=1, num_out_ch=1, num_feat=16, num_conv=4, upscale=4),
                         folder / "compact_x4.safetensors"),
        "dncnn": _save(DnCNN(in_nc=3, out_nc=3, nc=16, nb=6), folder / "dncnn.safetensors"),
        # A U-Net that reads a noise-level map as a 4th input channel; its sides must be multiples of 8.
        "drunet": _save(DRUNet(in_nc=4, out_nc=3, nc=[8, 16, 32, 64], nb=2), folder / "drunet.safetensors"),
    }


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def real_rgb() -> torch.Tensor:
    """A 128 x 128 RGB crop of scikit-image's astronaut (shipped with it)."""
    from skimage import data

    return torch.from_numpy(data.astronaut()[40:168, 160:288].astype(np.float32) / 255).permute(2, 0, 1)[None]


def test_load_by_path_reads_scale_channels_and_tasks_from_the_descriptor(models):
    sr = restore.load("spandrel", path=models["esrgan"])
    same = restore.load(f"spandrel:{models['esrgan']}")
    assert sr.name == same.name == "spandrel:esrgan_x2.safetensors" and sr.architecture == "ESRGAN"
    assert (sr.scale, sr.channels, sr.tile_multiple) == (2, (3,), 1)
    gray = restore.load("spandrel", path=str(models["compact"]))
    assert (gray.scale, gray.channels) == (4, (1,))
    den = restore.load("spandrel", path=models["dncnn"])
    assert (den.scale, den.channels) == (1, (3,)) and not den.model.supports_half
    out = sr.restore(torch.rand(2, 3, 24, 20), Downsample(2)).image
    assert out.shape == (2, 3, 48, 40) and out.dtype == torch.float32
    assert gray.restore(torch.rand(1, 1, 16, 16), Downsample(4)).image.shape == (1, 1, 64, 64)
    assert den.restore(torch.rand(1, 3, 17, 23), Denoise(SIGMA)).image.shape == (1, 3, 17, 23)
    with pytest.raises(RestoreError, match="given twice"):
        restore.load(f"spandrel:{models['esrgan']}", path=models["esrgan"])


def test_the_measured_halo_covers_the_receptive_field(models):
    # DnCNN of 6 3x3 convolutions: every output pixel hears 6 pixels each way, no more.
    den = restore.load("spandrel", path=models["dncnn"])
    assert 6 <= den.halo <= 8 and den.measured_halo == den.halo
    assert restore.load("spandrel", path=models["dncnn"], halo=20).halo == 20


@pytest.mark.parametrize("which, operator", [("esrgan", Downsample(2)), ("compact", Downsample(4)),
                                             ("dncnn", Denoise(SIGMA))])
def test_tiled_equals_untiled_on_a_real_image_with_the_measured_halo(models, real_rgb, which, operator):
    clean = real_rgb if which != "compact" else real_rgb.mean(1, keepdim=True)
    y = operator.measure(clean, torch.Generator().manual_seed(1))
    model = restore.load("spandrel", path=models[which])
    whole = Pipeline(model, operator, tile=0).run(y).image
    tiled = Pipeline(model, operator, tile=24, batch_size=3).run(y).image
    assert whole.shape == clean.shape
    assert abs(psnr(whole, clean) - psnr(tiled, clean)) < 0.05
    assert float((whole - tiled).abs().max()) < 1e-3
    if which == "dncnn":  # the halo is what makes them agree: without it the tile borders show
        blind = Pipeline(restore.load("spandrel", path=models[which], halo=0), operator, tile=24).run(y).image
        assert float((whole - blind).abs().max()) > 1e-2


def test_precision_follows_the_descriptor(models, real_rgb):
    y = Denoise(SIGMA).measure(real_rgb[..., :48, :48], torch.Generator().manual_seed(0))
    den = restore.load("spandrel", path=models["dncnn"])  # spandrel: DnCNN has no fp16, has bf16
    with pytest.raises(RestoreError, match=r"dncnn.safetensors' \(DnCNN\) does not support fp16.*fp32 or bf16$"):
        Pipeline(den, Denoise(SIGMA), tile=0, precision="fp16").run(y)
    fp32 = Pipeline(den, Denoise(SIGMA), tile=0).run(y).image
    bf16 = Pipeline(den, Denoise(SIGMA), tile=0, precision="bf16").run(y).image
    assert bf16.dtype == torch.float32 and float((bf16 - fp32).abs().max()) < 0.05


@pytest.mark.parametrize("which, operator, message", [
    ("esrgan", Downsample(4), r"\(ESRGAN, SR x2\) cannot invert sr x4: it does sr x2 only"),
    ("esrgan", Denoise(SIGMA), r"\(ESRGAN, SR x2\) cannot invert denoise: it does sr x2 only"),
    ("dncnn", Downsample(2), r"\(DnCNN, restoration x1\) cannot invert sr x2: a scale-1 model does denoise or deblur"),
    ("dncnn", Inpaint(torch.ones(1, 1, 16, 16)), "does not support task 'inpaint'"),
])
def test_operators_it_cannot_invert_are_refused_naming_model_and_operator(models, which, operator, message):
    model = restore.load("spandrel", path=models[which])
    y = torch.rand(1, 3, 16, 16)
    with pytest.raises(RestoreError, match=message):
        model.restore(operator(y) if isinstance(operator, Downsample) else y, operator)


def test_a_scale_one_model_deblurs_blind(models):
    y = torch.rand(1, 3, 20, 20)
    assert restore.load("spandrel", path=models["dncnn"]).restore(y, Blur(torch.ones(3, 3) / 9)).image.shape == y.shape


def _pickle_with_code(path: Path) -> Path:
    # A checkpoint whose pickle names a callable: an unrestricted torch.load would call it.
    torch.save({"state_dict": OrderedDict(w=torch.zeros(1)), "hook": print}, path)
    return path


def test_bad_files_give_one_line_errors(models, tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a model at all")
    unknown = tmp_path / "unknown.safetensors"
    save_file({"mystery.weight": torch.zeros(3, 3)}, str(unknown))
    other = tmp_path / "model.onnx"
    other.write_bytes(b"x")
    cases = {garbage: "not a readable safetensors file", unknown: "spandrel does not recognise this model's architecture",
             _pickle_with_code(tmp_path / "unsafe.pth"): "refused: the pickle holds objects other than tensors",
             other: "unsupported model file type '.onnx'", tmp_path / "missing.pth": "model file not found"}
    for path, message in cases.items():
        with pytest.raises(RestoreError, match=message) as raised:
            restore.load("spandrel", path=path)
        assert "\n" not in str(raised.value)
    with pytest.raises(RestoreError, match="needs a model file"):
        restore.load("spandrel").restore(torch.rand(1, 3, 8, 8), Denoise(SIGMA))


def test_a_plain_pth_state_dict_loads_weights_only(models, tmp_path):
    from safetensors.torch import load_file

    path = tmp_path / "esrgan.pth"
    torch.save({"params_ema": load_file(str(models["esrgan"]))}, path)  # the layout BasicSR writes
    assert restore.load("spandrel", path=path).scale == 2
    with open(path, "rb") as handle:  # not a plain pickle: torch's zip, read by torch.load(weights_only=True)
        assert handle.read(2) == b"PK" and pickle is not None


def test_without_spandrel_one_line_says_how_to_install(models, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "spandrel", None)  # import spandrel now raises ImportError
    with pytest.raises(RestoreError, match=r"^spandrel is not installed: pip install 'restore\[models\]'$"):
        restore.load("spandrel", path=models["dncnn"])
    image = tmp_path / "in.png"
    from restore.io import write_image

    write_image(image, torch.rand(1, 3, 16, 16), bit_depth=8)
    result = CliRunner().invoke(app, ["denoise", str(image), "-o", str(tmp_path / "out.png"),
                                      "--model", f"spandrel:{models['dncnn']}", "--sigma", "10"])
    assert result.exit_code == 1 and result.output.strip() == f"error: {INSTALL_HINT}"
    assert not (tmp_path / "out.png").exists()


def test_importing_restore_never_imports_spandrel():
    code = "import sys, restore, restore.restorers, restore.pipeline; print('spandrel' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def _write_geotiff(path: Path, pixels: np.ndarray, pixel_size: float) -> None:
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", height=pixels.shape[1], width=pixels.shape[2], count=pixels.shape[0],
                       dtype="uint16", crs="EPSG:32631", transform=from_origin(500000, 4000000, pixel_size, pixel_size)) as dst:
        dst.write(pixels)


def _read_geotiff(path: Path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read().astype(np.float64) / 65535, src.transform, src.crs, src.dtypes[0]


@pytest.mark.parametrize("task, which, flags", [("sr", "esrgan", ["--scale", "2"]), ("denoise", "dncnn", ["--sigma", "12.75"])])
def test_cli_on_a_16_bit_geotiff_keeps_georeferencing_and_tiles_seamlessly(models, real_rgb, tmp_path, task, which, flags):
    clean = real_rgb[0].double().numpy()
    if task == "sr":
        measured = Downsample(2)(real_rgb)[0]
    else:
        measured = Denoise(SIGMA).measure(real_rgb, torch.Generator().manual_seed(3))[0].clamp(0, 1)
    source = tmp_path / "in.tif"
    _write_geotiff(source, np.round(measured.double().numpy() * 65535).astype(np.uint16), 10.0)
    runs = {}
    for tile in (0, 32):
        out = tmp_path / f"out_{tile}.tif"
        result = CliRunner().invoke(app, [task, str(source), "-o", str(out), "--model", f"spandrel:{models[which]}",
                                          "--tile", str(tile), "--batch-size", "2", *flags])
        assert result.exit_code == 0, result.output
        runs[tile] = _read_geotiff(out)
    (whole, transform, crs, dtype), (tiled, *_) = runs[0], runs[32]
    assert dtype == "uint16" and crs.to_epsg() == 32631 and whole.shape == clean.shape
    assert transform.a == pytest.approx(10.0 / (2 if task == "sr" else 1)) and transform.c == 500000
    score = lambda x: 10 * np.log10(1 / np.mean((x - clean) ** 2))  # noqa: E731
    assert abs(score(whole) - score(tiled)) < 0.05 and np.abs(whole - tiled).max() < 2e-3


def test_cli_refuses_an_unsafe_pickle_and_the_wrong_scale_in_one_line(models, tmp_path):
    from restore.io import write_image

    image = tmp_path / "in.png"
    write_image(image, torch.rand(1, 3, 16, 16), bit_depth=8)
    unsafe = _pickle_with_code(tmp_path / "unsafe.ckpt")
    for args, message in (([f"spandrel:{unsafe}"], "refused: the pickle holds objects other than tensors"),
                          ([f"spandrel:{models['esrgan']}"], "cannot invert sr x4: it does sr x2 only")):
        result = CliRunner().invoke(app, ["sr", str(image), "-o", str(tmp_path / "out.png"), "--model", *args])
        assert result.exit_code == 1 and result.output.count("\n") == 1 and message in result.output, result.output
    assert not (tmp_path / "out.png").exists()


def test_bench_runs_a_spandrel_model_as_a_peer_row(models, tmp_path, real_rgb):
    from restore.io import write_image

    dataset = tmp_path / "tiny"
    for i in range(2):
        write_image(dataset / f"im{i}.png", real_rgb[..., 32 * i : 32 * i + 48, :48], bit_depth=8)
    for spec in (f"spandrel:{models['esrgan']},bicubic", f"spandrel:path={models['esrgan']}"):
        out = tmp_path / "results"
        result = CliRunner().invoke(app, ["bench", "--task", "sr", "--scale", "2", "-d", str(dataset), "-m", spec,
                                          "-o", str(out), "-q"])
        assert result.exit_code == 0, result.output
        records = [json.loads(line) for line in (out / "sr_tiny.jsonl").read_text().splitlines()]
        assert {r["method"] for r in records if r["psnr"] is not None} >= {spec.split(",")[0]}


def test_deep_ot_tunes_a_spandrel_denoiser(models):
    from skimage import data

    from restore.tuners import DeepOT

    op = Denoise(sigma=SIGMA)
    whole = torch.from_numpy(data.astronaut().astype(np.float32) / 255).permute(2, 0, 1)[None]
    clean = [whole[..., r : r + 128, c : c + 128] for r in range(0, 384, 128) for c in range(0, 512, 128)]
    noisy = [op.measure(x, torch.Generator().manual_seed(i)) for i, x in enumerate(clean)]
    den = restore.load("spandrel", path=models["dncnn"])
    tuner = DeepOT.calibrate(den, op, noisy, clean)
    tuner.perception = 0.0
    y = noisy[0]
    assert torch.allclose(tuner.restore(y, op).image, den.restore(y, op).image, atol=1e-5)
    tuner.perception = 1.0
    assert tuner.restore(y, op).image.shape == y.shape


def test_cli_tunes_a_spandrel_model_and_restores_with_the_tuner(models, tmp_path):
    from skimage import data

    from restore.io import write_image

    op = Denoise(sigma=SIGMA)
    whole = torch.from_numpy(data.astronaut().astype(np.float32) / 255).permute(2, 0, 1)[None]
    for i, (r, c) in enumerate((r, c) for r in range(0, 384, 128) for c in range(0, 512, 128)):
        crop = whole[..., r : r + 128, c : c + 128]
        write_image(tmp_path / "noisy" / f"{i:02d}.png", op.measure(crop, torch.Generator().manual_seed(i)).clamp(0, 1))
        write_image(tmp_path / "clean" / f"{i:02d}.png", crop)
    model = f"spandrel:{models['dncnn']}"
    tuned = CliRunner().invoke(app, ["tune", "-m", model, "--task", "denoise", "--restored-from", str(tmp_path / "noisy"),
                                     "--natural", str(tmp_path / "clean"), "--sigma", "12.75", "-o", str(tmp_path / "t.dot")])
    assert tuned.exit_code == 0, tuned.output
    out = tmp_path / "out.png"
    result = CliRunner().invoke(app, ["denoise", str(tmp_path / "noisy" / "00.png"), "-o", str(out), "--model", model,
                                      "--sigma", "12.75", "--tuner", str(tmp_path / "t.dot"), "--perception", "0.5"])
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_a_noise_level_map_model_gets_the_operators_sigma(models, real_rgb):
    den = restore.load("spandrel", path=models["drunet"])
    assert den.noise_map and den.channels == (3,) and den.tile_multiple == 8 and den.halo % 8 == 0
    y = torch.rand(2, 3, 30, 37)
    with torch.no_grad():
        padded = torch.nn.functional.pad(y, (0, 3, 0, 2), mode="replicate")
        expected = den.model.model(torch.cat([padded, torch.full((2, 1, 32, 40), 25 / 255)], 1))[..., :30, :37]
    assert torch.allclose(den.restore(y, Denoise(25 / 255)).image, expected.clamp(0, 1), atol=1e-6)
    assert float((den.restore(y, Denoise(5 / 255)).image - expected.clamp(0, 1)).abs().max()) > 1e-3
    with pytest.raises(RestoreError, match=r"\(DRUNet, denoiser with a noise level x1\) cannot invert deblur"):
        den.restore(y, Blur(torch.ones(3, 3) / 9))
    # Tiles on the net's grid of 8 (image and tile sides multiples of 8) agree with the whole image.
    noisy = Denoise(SIGMA).measure(real_rgb, torch.Generator().manual_seed(2))
    whole = Pipeline(den, Denoise(SIGMA), tile=0).run(noisy).image
    tiled = Pipeline(den, Denoise(SIGMA), tile=32).run(noisy).image
    assert abs(psnr(whole, real_rgb) - psnr(tiled, real_rgb)) < 0.05 and float((whole - tiled).abs().max()) < 1e-3
    estimated = Pipeline(den, Denoise(0.0), tile=0).prepared(noisy)[0].operator.sigma
    assert estimated == pytest.approx(SIGMA, rel=0.3)  # no sigma given: estimated on the image


@pytest.mark.slow
def test_dask_streams_a_spandrel_sr_model_as_one_process_does(models, real_rgb, tmp_path):
    source = tmp_path / "in.tif"
    _write_geotiff(source, np.round(Downsample(2)(real_rgb)[0].double().numpy() * 65535).astype(np.uint16), 10.0)
    outputs = {}
    for how, extra in (("single", []), ("dask", ["--scheduler", "local", "--workers", "1"])):
        outputs[how] = tmp_path / f"{how}.tif"
        result = CliRunner().invoke(app, ["sr", str(source), "-o", str(outputs[how]), "--model", f"spandrel:{models['esrgan']}",
                                          "--scale", "2", "--tile", "32", "-q", *extra])
        assert result.exit_code == 0, result.output
    (single, transform, *_), (dask, dask_transform, *_) = _read_geotiff(outputs["single"]), _read_geotiff(outputs["dask"])
    assert transform == dask_transform and np.abs(single - dask).max() <= 1 / 65535 + 1e-12
