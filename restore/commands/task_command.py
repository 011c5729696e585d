"""The options of ``restore denoise|deblur|sr|inpaint``: the common ones plus only the task's own.

Each task command's signature is built from the task table
(``restore.tasks``): the operator options a task takes become its flags, so
``restore denoise --help`` shows no ``--kernel``, ``--scale`` or ``--mask``.
Restorer options go through ``-O KEY=VALUE``; the older convenience flags
(``--steps``, ``--samples``, ...) still work and set the same declared
options, but are not listed (``restore models NAME`` lists every option).
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable, Optional

import typer

from restore.tasks import TASK_TABLE

KERNEL_HELP = "gaussian:STD | motion:LENGTH,ANGLE | mtf:VALUE_AT_NYQUIST (sensor PSF) | FILE.npy (deblur)"
PSF_HELP = "satellite sensor: Gaussian PSF of this MTF at Nyquist (e.g. 0.15)"
POISSON_HELP = "shot-noise std at full scale, 0-255 units"
PERCEPTION_HELP = "with --tuner: 0 = the model's output, 1 (default) = transported; -1..2"
OVERLAP_HELP = "pixels neighbouring tiles share, blended (default per model)"
VALUE_RANGE_HELP = "stored value of full scale, e.g. 4095 for 12-bit data (default: the type's max)"
MAX_PIXELS_HELP = "refuse in-memory images with more pixels (default 16384^2; 0: no limit)"
DEVICE_HELP = "auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps"
OPTION_HELP = "restorer option, repeatable: -O steps=5 (see `restore models NAME`)"
WEIGHTS_HELP = "the model's weights instead of the shipped ones (lidia: the authors' .pt or a convert-weights folder)"

Param = tuple[str, object, object]  # (name, annotation, typer default)


def _opt(default: object, *flags: str, help: str, hidden: bool = False, panel: str | None = None) -> object:
    return typer.Option(default, *flags, help=help, hidden=hidden, rich_help_panel=panel)


OPERATOR_PARAMS: dict[str, Param] = {
    "sigma": ("sigma", Optional[float], _opt(None, help="noise std, 0-255 units (denoise: estimated if not given)")),
    "kernel": ("kernel", Optional[str], _opt(None, help=KERNEL_HELP)),
    "scale": ("scale", Optional[int], _opt(None, help="super-resolution factor 2, 3 or 4 (default 4)")),
    "mask": ("mask", Optional[str], _opt(None, help="mask FILE (1/white = observed) or random:FRACTION")),
    "psf_mtf": ("psf_mtf", Optional[float], _opt(None, "--psf-mtf", help=PSF_HELP)),
    "sigma_poisson": ("sigma_poisson", Optional[float], _opt(None, "--sigma-poisson", help=POISSON_HELP)),
}

# Convenience flags that set a declared restorer option (see restore_images.OPTION_FLAGS); not listed.
CONVENIENCE_PARAMS: list[Param] = [
    ("samples", Optional[int], _opt(None, help="-O samples=N", hidden=True)),
    ("save_samples", Optional[int], _opt(None, "--save-samples", help="write the first K samples beside -o",
                                         panel="Outputs")),
    ("lam", Optional[float], _opt(None, help="-O lam=X", hidden=True)),
    ("iterations", Optional[int], _opt(None, help="-O iterations=N", hidden=True)),
    ("lr", Optional[float], _opt(None, help="-O lr=X", hidden=True)),
    ("gamma", Optional[float], _opt(None, help="-O gamma=X", hidden=True)),
    ("steps", Optional[int], _opt(None, help="-O steps=N", hidden=True)),
]
ADAPT_PARAMS: list[Param] = [  # LIDIA's, a denoiser
    ("adapt", Optional[str], _opt(None, help="lidia's adaptation: internal | external", panel="Model")),
    ("adapt_ref", Optional[Path], _opt(None, "--adapt-ref", help="clean reference for external adaptation",
                                       panel="Model")),
]


def common_params(default_model: str) -> list[Param]:
    """The options every restore command has: input, output, model, engine and output settings."""
    run = "Run"
    return [
        ("inputs", Path, typer.Argument(..., help="image file, folder or example:NAME")),
        ("output", Optional[Path], _opt(None, "-o", "--output", help="output file (folder for a folder input)")),
        ("model", str, _opt(default_model, "--model", "-m", help="restorer (see `restore models`)", panel="Model")),
        ("option", Optional[list[str]], _opt(None, "-O", "--option", help=OPTION_HELP, panel="Model")),
        ("weights", Optional[str], _opt(None, "--weights", help=WEIGHTS_HELP, panel="Model")),
        ("tuner", Optional[Path], _opt(None, "--tuner", help="deep-OT tuner from `restore tune`", panel="Model")),
        ("perception", Optional[float], _opt(None, help=PERCEPTION_HELP, panel="Model")),
        ("seed", int, _opt(0, help="seed of every random choice", panel=run)),
        ("device", str, _opt("auto", help=DEVICE_HELP, panel=run)),
        ("tile", int, _opt(512, help="tile side in input pixels; 0: whole images", panel=run)),
        ("overlap", Optional[int], _opt(None, help=OVERLAP_HELP, panel=run)),
        ("batch_size", int, _opt(8, "--batch-size", help="tiles per restorer call", panel=run)),
        ("precision", str, _opt("fp32", help="fp32 | fp16 | bf16", panel=run)),
        ("scheduler", Optional[str], _opt(None, help="Dask: local or tcp://HOST:PORT (GeoTIFFs)", panel=run)),
        ("workers", Optional[int], _opt(None, help="Dask local workers (default: CPUs)", panel=run)),
        ("bit_depth", Optional[int], _opt(None, "--bit-depth", help="8, 16, 32 (float TIFF); default: the input's",
                                          panel="Outputs")),
        ("value_range", Optional[float], _opt(None, "--value-range", help=VALUE_RANGE_HELP, panel="Outputs")),
        ("max_pixels", Optional[float], _opt(None, "--max-pixels", help=MAX_PIXELS_HELP, panel="Outputs")),
        ("std_map", Optional[Path], _opt(None, "--std-map", help="write the posterior std map (vble)",
                                         panel="Outputs")),
        ("ext", str, _opt("keep", "--ext", help="output format: keep | png | tif | jpg | webp", panel="Outputs")),
        ("suffix", Optional[str], _opt(None, "--suffix", help="added to output names, e.g. _clean", panel="Outputs")),
        ("quality", Optional[int], _opt(None, "--quality", help="jpg/webp quality 1-100 (default 95)", panel="Outputs")),
        ("recursive", bool, _opt(False, "--recursive", "-r", help="also sub-folders, tree kept under -o",
                                 panel="Outputs")),
        ("strip_metadata", bool, _opt(False, "--strip-metadata", help="write no EXIF, ICC profile or XMP",
                                      panel="Outputs")),
        ("overwrite", bool, _opt(False, "--overwrite", help="replace existing outputs", panel="Outputs")),
        ("quiet", bool, _opt(False, "--quiet", "-q", help="no progress bar or messages", panel="Outputs")),
    ]


def task_params(task: str) -> list[Param]:
    """Every parameter of ``restore TASK``, in the order ``--help`` shows them."""
    row = TASK_TABLE[task]
    params = common_params(row.default_model)
    params[2:2] = [OPERATOR_PARAMS[name] for name in row.options]
    if task == "denoise":
        params += ADAPT_PARAMS
    return params + CONVENIENCE_PARAMS


def with_signature(body: Callable[..., None], params: list[Param]) -> Callable[..., None]:
    """``body(**values)`` as a function whose signature Typer reads as ``params``."""
    def command(**values: object) -> None:
        body(**values)

    command.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, annotation, default in params])
    return command
