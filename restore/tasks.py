"""The task table: per task, its operator, the operator options it takes, its default model and how it is scored.

A task is a row here plus its operator's file: the CLI's commands and their
options, ``restore.run``, the bench and ``restore models`` all read this
table. It imports no torch (the CLI builds its commands from it before
loading anything heavy); operator classes are named by import path and
resolved when first needed.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from restore.errors import RestoreError

# Operator options of the command line and ``restore.run``; a task row names the ones it takes.
OPERATOR_OPTIONS = ("sigma", "kernel", "scale", "mask", "psf_mtf", "sigma_poisson")


@dataclass(frozen=True)
class Task:
    """One row of the task table.

    Attributes:
        name: the command and ``task=`` value.
        help: one line for ``restore NAME --help``.
        operator: import path of the operator class its measurements come from
            (restorers declare the operator types they invert; see ``Restorer.operators``).
        options: the operator options it takes (of ``OPERATOR_OPTIONS``).
        default_model: the restorer ``restore NAME`` runs without ``--model``.
        scoring: how ``restore bench`` scores it (written into every report).
        related: import paths of other operator classes whose measurements are of this
            task (a sensor's decimation is super-resolution too).
    """

    name: str
    help: str
    operator: str
    options: tuple[str, ...]
    default_model: str
    scoring: str
    related: tuple[str, ...] = ()

    def operator_type(self) -> type:
        """The operator class (imported on first use)."""
        return _resolve(self.operator)

    def operator_types(self) -> tuple[type, ...]:
        """The operator class and the related ones."""
        return tuple(_resolve(path) for path in (self.operator, *self.related))


def _resolve(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


WHOLE_IMAGE = "PSNR (10 log10(1/MSE)) and SSIM over all channels and the whole image, no border crop"
TASK_TABLE: dict[str, Task] = {t.name: t for t in (
    Task("denoise", "Remove Gaussian noise (sigma estimated when --sigma is not given).",
         "restore.operators.denoise.Denoise", ("sigma", "sigma_poisson"), "lidia", WHOLE_IMAGE),
    Task("deblur", "Remove blur of a known kernel.", "restore.operators.blur.Blur",
         ("sigma", "kernel", "psf_mtf", "sigma_poisson"), "vble", WHOLE_IMAGE),
    Task("sr", "Super-resolve by --scale.", "restore.operators.downsample.Downsample",
         ("sigma", "scale", "psf_mtf", "sigma_poisson"), "onestep-sr",
         "PSNR and SSIM on the Y channel (BT.601, 16-235) with a border of `scale` pixels cropped; "
         "PSNR RGB with the same crop", related=("restore.operators.decimate.Decimate",)),
    Task("inpaint", "Fill the pixels a --mask marks missing (0).", "restore.operators.inpaint.Inpaint",
         ("sigma", "mask", "sigma_poisson"), "vble", WHOLE_IMAGE + " (known pixels included)"),
)}
TASK_NAMES = tuple(TASK_TABLE)


def task_of(operator: object) -> str | None:
    """The task whose operator types ``operator`` is one of (a composition: its last part's), or None.

    What restorers with per-task defaults use instead of a task string the operator carries.
    """
    from restore.operators.compose import Compose  # the table itself stays free of torch

    if isinstance(operator, Compose):
        operator = operator.ops[-1]
    for row in TASK_TABLE.values():
        if isinstance(operator, row.operator_types()):
            return row.name
    return None


def task(name: str) -> Task:
    """The row of task ``name``, or an error naming the tasks."""
    if name not in TASK_TABLE:
        raise RestoreError(f"task must be one of {', '.join(TASK_NAMES)}, got {name!r}")
    return TASK_TABLE[name]
