"""One model's resumable campaign state: one .safetensors file, written atomically.

The tensors (weights, weight average, optimiser moments, random state) and
the bookkeeping (steps, CPU time, runs, validation scores) travel in the same
file (the bookkeeping as JSON in the safetensors metadata), so one
``os.replace`` updates both and a kill can never pair new weights with old
counts. A ``.json`` copy of the bookkeeping sits beside it for people and
diffs; the loader never reads it.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

STATE_KEY = "campaign_state"


@dataclass
class CampaignState:
    """What a model's training has cost and reached, plus its tensors.

    ``steps`` and ``cpu_seconds`` are cumulative: the shipped weights' own
    budget (``base``) plus every campaign run (``runs``).
    """

    name: str
    steps: int
    cpu_seconds: float
    base: dict
    runs: list[dict] = field(default_factory=list)
    schedule: dict = field(default_factory=dict)
    last_validation: dict | None = None
    shipped_validation: dict | None = None
    releases: list[dict] = field(default_factory=list)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def campaign_steps(self) -> int:
        return sum(r["steps"] for r in self.runs)

    @property
    def campaign_cpu_seconds(self) -> float:
        return sum(r["cpu_seconds"] for r in self.runs)

    def bookkeeping(self) -> dict:
        doc = asdict(self)
        doc.pop("tensors")
        return doc

    def group(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors stored under ``prefix.`` with the prefix removed."""
        cut = len(prefix) + 1
        return {k[cut:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}


def save_state(state: CampaignState, path: Path) -> None:
    """Write ``path`` (.safetensors) atomically, then its .json mirror."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = state.bookkeeping()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.tensors.items()}
    save_file(tensors, str(tmp), metadata={STATE_KEY: json.dumps(doc)})
    os.replace(tmp, path)
    mirror = path.with_suffix(".json")
    tmp = mirror.with_name(f".{mirror.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, mirror)


def read_bookkeeping(path: Path) -> dict | None:
    """The bookkeeping of a saved state without loading its tensors; None when there is none."""
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()[STATE_KEY])


def load_state(path: Path) -> CampaignState | None:
    """The saved state at ``path``, or None when the model has not been trained by the campaign yet."""
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        doc = json.loads(f.metadata()[STATE_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return CampaignState(**doc, tensors=tensors)


def save_average(average: dict[str, torch.Tensor], steps: int, path: Path) -> None:
    """The weight average of a state that does not commit it, tagged with the state's step count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in average.items()}, str(tmp), metadata={"steps": str(steps)})
    os.replace(tmp, path)


def load_average(path: Path, steps: int) -> dict[str, torch.Tensor] | None:
    """The saved average when it belongs to the state at ``steps`` (not a stale one from an older state)."""
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        if f.metadata().get("steps") != str(steps):
            return None
        return {k: f.get_tensor(k) for k in f.keys()}
