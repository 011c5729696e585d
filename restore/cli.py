"""The ``restore`` command line: restore, degrade, tune (deep OT), list models.

Every error a user can cause ends as one line on stderr and a non-zero exit;
no output file is left behind for an input that failed.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Optional

import typer
import typer.core

from restore.errors import InternalFailure, RestoreError
from restore.commands.task_command import DEVICE_HELP, KERNEL_HELP, POISSON_HELP, PSF_HELP
from restore.tasks import TASK_TABLE

_display_type_rich = typer.core.TyperOption.display_type_rich


def _flag_type(self, ctx):
    """No ``<bool>`` type column for on/off flags: they take no value (Typer 0.29 with Click 8.5 shows one)."""
    return None if self.is_flag and not self.count else _display_type_rich(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_type

EXIT_CODES = "Exit codes: 0 success, 1 a bad input or option or a failed file, 2 a usage error, 3 an internal error " \
    "(please report it), 130 interrupted."
# Plain (not rich) help: one line per option, so each task command's --help fits one screen.
# Completion on: `restore --install-completion` (bash, zsh, fish, PowerShell) or `--show-completion`.
app = typer.Typer(no_args_is_help=True, help="Image restoration toolkit.\n\n" + EXIT_CODES, rich_markup_mode=None)


def _print_version(value: bool) -> None:
    """``--version``: the installed package's version, from its metadata (no torch import)."""
    if value:
        from restore.commands.version import version_line

        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _main_options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print the version and exit"),
) -> None:
    """Image restoration toolkit."""


def fail(message: str, code: int = 1) -> None:
    """Print one line (in the CLI's words: flags, not keyword arguments) and exit non-zero."""
    from restore.commands.wording import cli_words

    typer.echo(f"error: {cli_words(message)}", err=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], None]) -> None:
    """Run a command body, turning every failure into one line and an exit code."""
    try:
        fn()
    except typer.Exit:
        raise
    except InternalFailure as e:
        fail(f"{e} (please report this)", 3)
    except RestoreError as e:
        fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except MemoryError:
        fail("out of memory: use a smaller --tile or a smaller image")
    except Exception as e:  # noqa: BLE001 - the CLI promises no tracebacks
        fail(f"unexpected {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (please report this)", 3)


def _restore_command(task: str) -> Callable[..., None]:
    from restore.commands.task_command import task_params, with_signature

    def body(*, inputs: Path, output: Optional[Path], model: str, option: Optional[list[str]], **values) -> None:
        from restore.commands.restore_images import OPTION_FLAGS, RestoreJob, run_restore_job

        flags = {name: values.pop(name, None) for name in OPTION_FLAGS}
        job = RestoreJob(task=task, inputs=inputs, output=output, model=model, flags=flags, options=option or [],
                         **values)
        guarded(lambda: run_restore_job(job))

    command = with_signature(body, task_params(task))
    command.__doc__ = TASK_TABLE[task].help
    return command


for _task in TASK_TABLE:
    app.command(name=_task)(_restore_command(_task))


@app.command()
def degrade(
    inputs: Path = typer.Argument(..., help="a clean image file or a folder of them"),
    output: Path = typer.Option(..., "-o", "--output", help="output file (or folder for a folder input)"),
    task: str = typer.Option(..., help="denoise | deblur | sr | inpaint"),
    sigma: float = typer.Option(0.0, help="noise std in 0-255 units"),
    kernel: Optional[str] = typer.Option(None, help=KERNEL_HELP),
    scale: Optional[int] = typer.Option(None, help="downsampling factor 2, 3 or 4 (sr)"),
    mask: Optional[str] = typer.Option(None, help="mask FILE or random:FRACTION (inpaint)"),
    mask_out: Optional[Path] = typer.Option(None, "--mask-out", help="save the mask used (inpaint)"),
    psf_mtf: Optional[float] = typer.Option(None, "--psf-mtf", help=PSF_HELP),
    sigma_poisson: Optional[float] = typer.Option(None, "--sigma-poisson", help=POISSON_HELP),
    seed: int = typer.Option(0, help="seed of the noise and of random masks"),
    bit_depth: Optional[int] = typer.Option(None, "--bit-depth", help="8, 16 (32: float TIFF); default: the input's"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace existing outputs"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Apply an operator of the toolkit (seeded): how degraded test inputs are made."""
    from restore.commands.degrade_images import DegradeJob, run_degrade_job

    job = DegradeJob(
        inputs=inputs, output=output, task=task, sigma=sigma, kernel=kernel, scale=scale, mask=mask,
        mask_out=mask_out, seed=seed, bit_depth=bit_depth, overwrite=overwrite, quiet=quiet, psf_mtf=psf_mtf,
        sigma_poisson=sigma_poisson,
    )
    guarded(lambda: run_degrade_job(job))


@app.command()
def tune(
    model: str = typer.Option(..., "--model", "-m", help="the restorer to tune (see `restore models`)"),
    task: str = typer.Option(..., help="denoise | deblur | sr"),
    restored_from: Path = typer.Option(..., "--restored-from", help="folder of degraded images the model restores"),
    natural: Path = typer.Option(..., "--natural", help="folder of clean natural images (need not be the same scenes)"),
    output: Path = typer.Option(..., "-o", "--output", help="the tuner file to write, e.g. lidia-s25.dot"),
    sigma: Optional[float] = typer.Option(None, help="noise std in 0-255 units (estimated per image when not given)"),
    kernel: Optional[str] = typer.Option(None, help=KERNEL_HELP),
    scale: Optional[int] = typer.Option(None, help="super-resolution factor 2, 3 or 4 (sr)"),
    psf_mtf: Optional[float] = typer.Option(None, "--psf-mtf", help=PSF_HELP),
    patch: int = typer.Option(1, help="latent patch side p (D = latent channels x p^2; larger needs 8 D latent cells per set)"),
    local_mean: int = typer.Option(5, "--local-mean", help="latent cells of the local mean kept out of the map; 0: the paper's"),
    autoencoder: Optional[str] = typer.Option(
        None, "--autoencoder", help="latent space: a shipped autoencoder (default cae-a0483) or a local diffusers "
        "AutoencoderKL folder (never downloaded)"),
    max_images: Optional[int] = typer.Option(None, "--max-images", help="use at most this many images of each folder"),
    seed: int = typer.Option(0, help="seed of stochastic models"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    tile: int = typer.Option(512, help="tile side the model runs with; 0: whole images"),
    precision: str = typer.Option("fp32", help="fp32 | fp16 | bf16 compute of the model (bf16: LIDIA ~1.6x faster)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing tuner file"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Calibrate a deep-OT perception tuner for a model and task (then restore with --tuner FILE --perception A)."""
    from restore.commands.tune_restorer import TuneJob, run_tune_job

    job = TuneJob(
        model=model, task=task, restored_from=restored_from, natural=natural, output=output, sigma=sigma, kernel=kernel,
        scale=scale, psf_mtf=psf_mtf, patch=patch, local_mean=local_mean, max_images=max_images, seed=seed, device=device,
        tile=tile, precision=precision, overwrite=overwrite, quiet=quiet, autoencoder=autoencoder,
    )
    guarded(lambda: run_tune_job(job))


@app.command()
def bench(
    task: str = typer.Option(..., help="denoise | sr | deblur | inpaint"),
    dataset: list[Path] = typer.Option(..., "--dataset", "-d", help="folder of clean images (one or more)"),
    models: str = typer.Option(..., "--models", "-m", help="comma-separated: restorers, bm3d; options as rddm:steps=5"),
    output: Path = typer.Option(Path("results"), "-o", "--output", help="folder for the JSON lines, summaries, plots"),
    sigma: Optional[list[float]] = typer.Option(None, help="noise std(s), 0-255 units: --sigma 15 25 50"),
    scale: Optional[list[int]] = typer.Option(None, help="sr factor(s): --scale 2 4 (default 4)"),
    kernel: Optional[str] = typer.Option(None, help=KERNEL_HELP + " (default gaussian:1.6)"),
    missing: Optional[list[float]] = typer.Option(None, help="inpaint: fraction(s) of pixels missing (default 0.5)"),
    limit: Optional[int] = typer.Option(None, help="only the first N images of each dataset (sorted by name)"),
    crop: Optional[int] = typer.Option(None, help="score the central CROP x CROP of each image (for slow models)"),
    seed: int = typer.Option(0, help="seed of the degradations and of stochastic models"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch and OpenCV (default: torch's)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Benchmark restorers and peers on datasets: per-image JSON lines, a summary and plot, OVERVIEW.md; resumable."""
    from restore.commands.bench_job import run_bench_command

    guarded(lambda: run_bench_command(
        task=task, datasets=dataset, models=models, output=output, sigmas=sigma or [], scales=scale or [], kernel=kernel,
        missing=missing or [], limit=limit, crop=crop, seed=seed, device=device, threads=threads, quiet=quiet))


@app.command()
def compare(
    images: list[Path] = typer.Argument(..., metavar="IMAGE", help="images of one size to show side by side"),
    output: Path = typer.Option(..., "-o", "--output", help="the grid image to write (.png, .tif, .jpg, ...)"),
    ref: Optional[Path] = typer.Option(None, "--ref", help="clean reference: shown first; PSNR, SSIM under each panel"),
    crop: Optional[str] = typer.Option(None, "--crop", help="X,Y,W,H: a region shown zoomed in a row of its own"),
    labels: Optional[str] = typer.Option(None, "--labels", help="comma-separated panel names (default: file names)"),
    columns: Optional[int] = typer.Option(None, "--columns", help="panels per row (default: all in one row)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Images side by side in one labelled grid (scored against --ref; gray, RGB, 8- and 16-bit alike)."""
    from restore.commands.compare_images import CompareJob, run_compare_job

    job = CompareJob(images=images, output=output, reference=ref, crop=crop, labels=labels, columns=columns,
                     overwrite=overwrite, quiet=quiet)
    guarded(lambda: run_compare_job(job))


@app.command()
def models(
    name: Optional[str] = typer.Argument(None, help="one restorer: tasks, options, precision safety, weights, scores"),
    markdown: bool = typer.Option(False, "--markdown", help="the shipped weights as a Markdown table (README's)"),
    as_json: bool = typer.Option(False, "--json", help="everything as JSON (with NAME: that restorer's)"),
) -> None:
    """List restorers, their tasks, shipped weights with their sizes and measured scores."""
    from restore.commands.list_models import print_model, print_models

    if name is not None and markdown:
        fail("--markdown lists every model's weights: give no NAME")
    guarded(lambda: print_model(name, as_json) if name is not None else print_models(markdown, as_json))


@app.command(name="convert-weights")
def convert_weights(
    kind: str = typer.Argument(..., help="the checkpoint's format: lidia (the LIDIA authors' .pt files)"),
    checkpoint: Path = typer.Argument(..., help="the checkpoint file, e.g. model_state_sigma_25_bw.pt"),
    output: Path = typer.Option(..., "-o", "--output", help="weights folder to write (others may already be in it)"),
    sigma: Optional[float] = typer.Option(None, help="noise std it was trained for, 0-255 (default: from its name)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace converted weights of the same name"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Convert a checkpoint once into safetensors + config, so that `--weights DIR` runs it with no pickle."""
    from restore.commands.convert_weights import run_convert

    guarded(lambda: run_convert(kind, checkpoint, output, sigma, overwrite, quiet))


# Options of `restore bench` that take several values after one flag (--sigma 15 25 50).
MULTI_VALUE = {"bench": ("--sigma", "--scale", "--missing")}


def spread_values(argv: list[str]) -> list[str]:
    """``--sigma 15 25 50`` -> ``--sigma 15 --sigma 25 --sigma 50`` for the options that take several values.

    Click options take one value per flag; this keeps the shorter form the docs use.
    """
    if not argv or argv[0] not in MULTI_VALUE:
        return argv
    out, flag = [], None
    for token in argv:
        if token.startswith("-"):
            flag = token if token in MULTI_VALUE[argv[0]] else None
            out.append(token)
        elif flag is not None and out[-1] != flag:
            out += [flag, token]
        else:
            out.append(token)
    return out


def main() -> None:
    """Console-script entry point."""
    app(args=spread_values(sys.argv[1:]), prog_name="restore")


if __name__ == "__main__":
    sys.exit(main())
