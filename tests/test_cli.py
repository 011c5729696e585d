"""The command line: round trips, folders, skipping, and one-line errors with no output file."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from restore.cli import app
from restore.io import read_image

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture()
def clean_png(tmp_path, camera):
    path = tmp_path / "clean.png"
    cv2.imwrite(str(path), (camera[0, 0].numpy() * 255).round().astype(np.uint8))
    return path


def test_degrade_then_denoise_round_trip(tmp_path, clean_png):
    noisy, out = tmp_path / "noisy.png", tmp_path / "out.png"
    assert invoke("degrade", clean_png, "-o", noisy, "--task", "denoise", "--sigma", 25, "--seed", 0).exit_code == 0
    result = invoke("denoise", noisy, "-o", out, "--model", "lidia")
    assert result.exit_code == 0, result.output
    assert "estimated noise sigma" in result.output
    x, y, z = (read_image(p).pixels for p in (clean_png, noisy, out))
    assert z.shape == x.shape
    gain = 10 * np.log10(float(((y - x) ** 2).mean() / ((z - x) ** 2).mean()))
    assert gain > 5


def test_degrade_is_seeded_and_sr_shrinks(tmp_path, clean_png):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for path, seed in ((a, 0), (b, 0), (c, 1)):
        invoke("degrade", clean_png, "-o", path, "--task", "denoise", "--sigma", 25, "--seed", seed)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    small = tmp_path / "small.png"
    assert invoke("degrade", clean_png, "-o", small, "--task", "sr", "--scale", 4).exit_code == 0
    assert read_image(small).pixels.shape[-2:] == (24, 32)


def test_degrade_inpaint_saves_its_mask(tmp_path, clean_png):
    out, mask = tmp_path / "holes.png", tmp_path / "mask.png"
    result = invoke("degrade", clean_png, "-o", out, "--task", "inpaint", "--mask", "random:0.5", "--mask-out", mask)
    assert result.exit_code == 0, result.output
    m = read_image(mask).pixels
    assert 0.4 < float(m.mean()) < 0.6


def test_folder_in_folder_out_and_skip_existing(tmp_path, clean_png):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        invoke("degrade", clean_png, "-o", folder / f"n{i}.png", "--task", "denoise", "--sigma", 25, "--seed", i)
    out = tmp_path / "out"
    assert invoke("denoise", folder, "-o", out, "--model", "nlm", "--sigma", 25).exit_code == 0
    # The folder run is restore.run's: a resumable log beside the outputs.
    assert sorted(p.name for p in out.iterdir()) == ["n0.png", "n1.png", "restore-log.jsonl"]
    before = (out / "n0.png").stat().st_mtime_ns
    result = invoke("denoise", folder, "-o", out, "--model", "nlm", "--sigma", 25)
    assert "skipped" in result.output and (out / "n0.png").stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "make_input, args, message",
    [
        (lambda d: d / "missing.png", [], "not found"),
        (lambda d: (d / "text.png").write_text("not an image") and d / "text.png", [], "text.png"),
        (None, ["--model", "nope"], "unknown model"),
        (None, ["--sigma", "-5"], "--sigma"),
        (None, ["--tile", "64", "--overlap", "64"], "--overlap"),
        (None, ["--precision", "fp8"], "--precision"),
        (None, ["--batch-size", "0"], "--batch-size"),
        (None, ["--device", "cuda:7"], "cuda"),
        (None, ["--model", "nlm", "--sigma", "25", "--samples", "5"], "--samples"),
        (None, ["--model", "nlm", "--sigma", "25", "--std-map", "std.tif"], "uncertainty"),
    ],
)
def test_bad_input_gives_one_line_and_no_output(tmp_path, clean_png, make_input, args, message):
    src = make_input(tmp_path) if make_input else clean_png
    out = tmp_path / "out.png"
    result = invoke("denoise", src, "-o", out, *args)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output
    assert not out.exists()


def test_truncated_png_and_tiny_image_fail_cleanly(tmp_path, clean_png):
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(clean_png.read_bytes()[:300])
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((5, 5), np.uint8))
    for src in (truncated, tiny):
        out = tmp_path / f"{src.stem}_out.png"
        result = invoke("denoise", src, "-o", out, "--sigma", 25)
        assert result.exit_code != 0 and result.output.startswith("error:"), result.output
        assert not out.exists()


def test_models_lists_restorers_and_weights():
    result = invoke("models")
    assert result.exit_code == 0
    assert "lidia" in result.output and "nlm" in result.output and "lidia-gray-s25" in result.output


def test_console_process_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "restore.cli", "denoise", str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_tile_options_give_the_untiled_pixels(tmp_path, clean_png):
    noisy = tmp_path / "noisy.png"
    invoke("degrade", clean_png, "-o", noisy, "--task", "denoise", "--sigma", 25, "--seed", 0)
    outs = {}
    for name, args in {"whole": ["--tile", 0], "tiled": ["--tile", 40, "--batch-size", 3]}.items():
        outs[name] = tmp_path / f"{name}.png"
        result = invoke("denoise", noisy, "-o", outs[name], "--model", "nlm", "--sigma", 25, *args)
        assert result.exit_code == 0, result.output
    assert outs["whole"].read_bytes() == outs["tiled"].read_bytes()


def test_reduced_precision_runs_lidia(tmp_path, clean_png):
    noisy, out = tmp_path / "noisy.png", tmp_path / "out.png"
    invoke("degrade", clean_png, "-o", noisy, "--task", "denoise", "--sigma", 25, "--seed", 0)
    result = invoke("denoise", noisy, "-o", out, "--model", "lidia", "--sigma", 25, "--precision", "bf16", "-q")
    assert result.exit_code == 0, result.output
    x, z = read_image(clean_png).pixels, read_image(out).pixels
    assert 10 * np.log10(1 / float(((z - x) ** 2).mean())) > 27


def test_sensor_options_degrade_with_the_satellite_model(tmp_path, clean_png):
    blurry, small = tmp_path / "blurry.png", tmp_path / "small.png"
    result = invoke("degrade", clean_png, "-o", blurry, "--task", "deblur", "--psf-mtf", 0.15, "--sigma-poisson", 5)
    assert result.exit_code == 0, result.output
    x, y = read_image(clean_png).pixels, read_image(blurry).pixels
    assert y.shape == x.shape and 0 < float(((y - x) ** 2).mean()) < 0.01
    assert invoke("degrade", clean_png, "-o", small, "--task", "sr", "--scale", 2, "--psf-mtf", 0.3).exit_code == 0
    assert read_image(small).pixels.shape[-2:] == (48, 64)
    for args, message in ((["--task", "deblur", "--psf-mtf", 0.15, "--kernel", "gaussian:1"], "--psf-mtf"),
                          (["--task", "denoise", "--psf-mtf", 0.15], "--psf-mtf"),
                          (["--task", "deblur", "--psf-mtf", 1.5], "MTF"),
                          (["--task", "denoise", "--sigma-poisson", -1], "--sigma-poisson")):
        out = tmp_path / "bad.png"
        result = invoke("degrade", clean_png, "-o", out, *args)
        assert result.exit_code == 1 and message.lower() in result.output.lower(), result.output
        assert not out.exists()


@pytest.mark.parametrize("task", ["denoise", "deblur", "sr", "inpaint"])
def test_task_commands_show_only_their_own_operator_options(task):
    from restore.tasks import OPERATOR_OPTIONS, TASK_TABLE

    text = invoke(task, "--help").output
    for name in OPERATOR_OPTIONS:
        flag = "--" + name.replace("_", "-")
        shown = f" {flag} " in text or f" {flag}\n" in text
        assert shown == (name in TASK_TABLE[task].options), (task, flag)
    # Options of other tasks are usage errors (exit 2), not silently ignored.
    other = "--scale" if task != "sr" else "--kernel"
    assert invoke(task, "x.png", other, "2").exit_code == 2


def test_restorer_options_by_O_and_by_flag_reach_the_same_declaration(tmp_path, clean_png):
    noisy = tmp_path / "noisy.png"
    invoke("degrade", clean_png, "-o", noisy, "--task", "denoise", "--sigma", 25)
    typo = invoke("denoise", noisy, "-o", tmp_path / "a.png", "--model", "nlm", "-O", "colr=lab")
    assert typo.exit_code == 1 and "colr" in typo.output and "color" in typo.output, typo.output
    bad = invoke("denoise", noisy, "-o", tmp_path / "b.png", "--model", "nlm", "-O", "color=yuv")
    assert bad.exit_code == 1 and "rgb, lab" in bad.output, bad.output
    flag = invoke("denoise", noisy, "-o", tmp_path / "c.png", "--model", "nlm", "--steps", "3")
    assert flag.exit_code == 1 and "--steps" in flag.output, flag.output
    assert invoke("denoise", noisy, "-o", tmp_path / "d.png", "--model", "nlm", "-O", "color=lab").exit_code == 0


@pytest.mark.parametrize("task", ["denoise", "deblur", "sr", "inpaint"])
def test_task_help_fits_one_screen(task):
    text = CliRunner().invoke(app, [task, "--help"], terminal_width=100).output
    assert len(text.splitlines()) <= 50, text


# The listing and the help start fast: they import no torch (restore.catalogue stands in for the registry).
_NO_TORCH = '''
import contextlib, io, sys
from restore.cli import main
sys.argv = ["restore", *sys.argv[1:]]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main()
    except SystemExit as e:
        code = e.code
sys.stdout.write(out.getvalue())
print("exit", code, "torch", "torch" in sys.modules, file=sys.stderr)
'''


@pytest.mark.parametrize("args", [["--help"], ["models"], ["models", "--markdown"], ["denoise", "--help"]])
def test_help_and_model_listing_import_no_torch(args):
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH, *args], capture_output=True, text=True, timeout=120)
    assert proc.stderr.strip().splitlines()[-1] == "exit 0 torch False", proc.stderr
    assert proc.stdout.strip()
    if args == ["models"]:
        import restore.restorers  # noqa: F401 - in this process the listing comes from the registry

        assert proc.stdout == invoke("models").output


def test_catalogue_is_the_registry():
    from restore import catalogue

    if catalogue.MODULES != catalogue.modules_on_disk():
        # A restorer file added or removed: the listing reads the registry (correct, slower) until the
        # catalogue is regenerated, so that adding a restorer needs no edit outside its own file.
        pytest.skip("restorer files changed since the catalogue was generated: `restore models` reads the registry "
                    "until `python -m restore.catalogue` is run")
    assert catalogue.RESTORERS == catalogue.from_registry(), "restorers changed: run `python -m restore.catalogue`"
    block = catalogue.Path(catalogue.__file__).read_text()
    assert catalogue.generated_block() in block, "run `python -m restore.catalogue`"


def test_catalogue_finds_the_weights_as_the_loader_does(monkeypatch, tmp_path):
    from restore import catalogue, weights

    assert catalogue.weights_dir() == weights.WEIGHTS_DIR
    monkeypatch.setenv("RESTORE_WEIGHTS", str(tmp_path))
    assert catalogue.weights_dir() == weights._weights_dir() == tmp_path


def test_a_stale_catalogue_gives_way_to_the_registry():
    script = ("import sys; import restore.catalogue as c; c.MODULES += ('gone',); e = c.entries(); "
              "print('torch' in sys.modules, sorted(e) == sorted(c.RESTORERS))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["True", "True"], proc.stderr
