"""The methods a benchmark compares: the toolkit's restorers by name, and peers outside it (BM3D).

A method spec is a registry name with optional options after a colon,
``rddm:steps=5`` or ``lidia:adapt=internal,precision=bf16`` (a model file:
``spandrel:FILE`` or ``spandrel:path=FILE``); ``precision``
(fp32 | fp16 | bf16) is the pipeline's, as ``--precision`` is in the CLI, and
every other option goes to ``restore.load``. A restorer runs through
``restore.Pipeline`` on the whole image, the path users run. Specs are
separated by commas: ``lidia,rddm:steps=5,seed=1,bm3d`` reads as three specs.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from restore.errors import RestoreError
from restore.operators.base import Operator
from restore.options import parse_assignments
from restore.pipeline import PRECISIONS, Pipeline
from restore.restorers import available, load, names_for_task
from restore.restorers.base import split_model_name

PEERS = {"bm3d": "BM3D / CBM3D from the bm3d package (profile 'np', sigma_psd = sigma/255; CBM3D in opponent colour space)"}

# (image, info) from (measurement, operator, seed).
Runner = Callable[[torch.Tensor, Operator, int], tuple[torch.Tensor, dict]]


@dataclass
class Method:
    """A named way of restoring, ready to run."""

    spec: str
    run: Runner
    description: str


def split_specs(text: str) -> list[str]:
    """Comma-separated specs, where a spec's own options follow its colon ("rddm:steps=5,seed=1,bicubic")."""
    specs: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part and ":" not in part and specs:
            specs[-1] += "," + part
        else:
            specs.append(part)
    if not specs:
        raise RestoreError("--models is empty; name at least one, e.g. --models lidia,nlm")
    return specs


def parse_spec(spec: str) -> tuple[str, dict]:
    """"rddm:steps=5,precision=bf16" -> ("rddm", {"steps": "5", "precision": "bf16"}).

    Values stay text: the restorer's declared options type and check them
    (``restore.options``), as they do the CLI's ``-O KEY=VALUE``.
    """
    name, _, opts = spec.partition(":")
    parts = [p for p in opts.split(",") if p]
    if parts and "=" not in parts[0]:  # "spandrel:FILE,halo=8": a model file named after the colon
        name, named = split_model_name(f"{name}:{parts[0]}")
        if named:
            given = parse_assignments(parts[1:], f" in '{spec}'")
            for key in set(named) & set(given):
                raise RestoreError(f"option '{key}' given twice in '{spec}'")
            return name, named | given
    return name, parse_assignments(parts, f" in '{spec}'")


def build_method(spec: str, task: str, device: str) -> Method:
    """The runnable method of a spec, refusing unknown names and models that do not do ``task``."""
    name, options = parse_spec(spec)
    if name in PEERS:
        if options:
            raise RestoreError(f"{name} takes no options, got '{spec}'")
        return Method(spec, _bm3d(task), PEERS[name])
    registry = available()
    if name not in registry:
        raise RestoreError(f"unknown model '{name}'; models for {task}: {', '.join(_choices(task))}")
    if task not in registry[name].tasks:
        raise RestoreError(f"model '{name}' does not do {task}; models for {task}: {', '.join(_choices(task))}")
    precision = str(options.pop("precision", "fp32"))
    if precision not in PRECISIONS:
        raise RestoreError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r} in '{spec}'")
    restorer = load(name, device=device, **options)  # an undeclared or ill-typed option raises here
    return Method(spec, _restorer_runner(restorer, device, precision), registry[name].description)


def _choices(task: str) -> list[str]:
    return names_for_task(task) + [p for p in PEERS if task == "denoise"]


def _restorer_runner(restorer, device: str, precision: str) -> Runner:
    """Run ``restorer`` as users do: through ``Pipeline``, on the whole image (tile 0), in ``precision``.

    The pipeline's precision handling (autocast, a NaN or inf batch redone in
    fp32) and its noise for stochastic restorers are what the tables measure.
    """

    def run(y: torch.Tensor, operator: Operator, seed: int) -> tuple[torch.Tensor, dict]:
        pipe = Pipeline(restorer, operator, tile=0, device=device, precision=precision, seed=seed)
        # The pipeline merges on the CPU, which also waits for asynchronous GPU work, inside the timing.
        result = pipe.run(y)
        return result.image, result.info

    return run


def _bm3d(task: str) -> Runner:
    if task != "denoise":
        raise RestoreError(f"bm3d is a denoiser; it does not do {task}")
    try:
        import bm3d
    except ImportError:
        raise RestoreError("model bm3d needs the bm3d package: pip install bm3d") from None

    def run(y: torch.Tensor, operator: Operator, seed: int) -> tuple[torch.Tensor, dict]:
        sigma = float(operator.sigma)
        arr = y[0].permute(1, 2, 0).numpy().astype(np.float64)
        if arr.shape[2] == 1:
            out = bm3d.bm3d(arr[:, :, 0], sigma_psd=sigma)[:, :, None]
        elif arr.shape[2] == 3:
            out = bm3d.bm3d_rgb(arr, sigma_psd=sigma)
        else:
            raise RestoreError(f"bm3d takes 1 or 3 channels, got {arr.shape[2]}")
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).permute(2, 0, 1)[None], {}

    return run
