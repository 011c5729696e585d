"""What the campaign needs to know to train one model: the base class of every job."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from restore.training.data import training_images
from restore.training.patches import PatchSampler
from restore.weights import WEIGHTS_DIR, load_state, sha256

REPO = Path(__file__).resolve().parents[3]
MODELS_DIR = REPO / "models"
DATA_ROOT = REPO / ".." / "shared" / "data"


@dataclass(frozen=True)
class ShippedBudget:
    """The training behind a shipped file, from its model card (the weights' JSON keeps only the last run's)."""

    steps: int
    cpu_seconds: float
    note: str


@dataclass(frozen=True)
class Recipe:
    """Open-ended schedule: constant ``lr`` after a linear warm-up of ``warmup`` steps, weight average ``ema``.

    The warm-up runs whenever the optimiser's moments start fresh (first
    start from shipped weights; every resume of a model whose moments are not
    stored). ``release_margin`` is how much better than the shipped weights a
    candidate must validate (in the job's validation-loss units).
    """

    lr: float
    ema: float
    batch: int
    crop: int
    warmup: int = 100
    clip: float = 20.0
    release_margin: float = 0.0


class Job:
    """One model of the queue. Subclasses give the net, the loss and the validation.

    Attributes:
        name: the shipped weights' name (``weights/<name>.safetensors``).
        card: the model card folder under ``models/`` whose ``campaign/`` holds the state.
        priority: share of campaign time (see ``schedule.next_job``).
        store_moments: whether the committed state keeps the optimiser's moments; without
            them a resume starts fresh moments with a warm-up.
        store_fp16: whether the committed weights are stored in fp16.
        commit_average: whether the weight average is in the committed state; when not,
            it is saved beside it in an ignored ``.local/`` file (what ``release`` ships on
            this machine), and a resume elsewhere restarts the average from the weights.
    """

    name: str
    card: str
    priority: float
    recipe: Recipe
    budget: ShippedBudget
    channels: int = 3
    data: tuple[str, ...] = ("BSDS500/train", "BSDS500/test")
    store_moments: bool = True
    store_fp16: bool = False
    commit_average: bool = True
    release_fp16: bool = False

    def __init__(self, data_root: Path = DATA_ROOT, weights_dir: Path = WEIGHTS_DIR) -> None:
        self.data_root, self.weights_dir = Path(data_root), Path(weights_dir)

    # ---- the model ------------------------------------------------------------
    def new_model(self) -> nn.Module:
        raise NotImplementedError

    def shipped_stem(self) -> Path:
        return self.weights_dir / self.name

    def shipped_config(self) -> dict:
        return json.loads(self.shipped_stem().with_suffix(".json").read_text())

    def shipped_model(self) -> nn.Module:
        model = self.new_model()
        model.load_state_dict(load_state(self.shipped_stem().with_suffix(".safetensors")))
        return model

    def shipped_sha(self) -> str:
        """Identifies the shipped weights a validation score belongs to (and what they depend on)."""
        return sha256(self.shipped_stem().with_suffix(".safetensors"))

    def state_path(self, models_dir: Path = MODELS_DIR) -> Path:
        return Path(models_dir) / self.card / "campaign" / f"{self.name}.safetensors"

    def local_average_path(self, models_dir: Path = MODELS_DIR) -> Path:
        """Where the weight average lives when it is not committed (``models/*/campaign/.local/`` is ignored)."""
        return self.state_path(models_dir).parent / ".local" / f"{self.name}.average.safetensors"

    # ---- training -------------------------------------------------------------
    def sampler(self, device: torch.device, generator_seed: int, cache: dict) -> PatchSampler:
        """Random crops of the training images, decoded once per process and shared by jobs with the same data."""
        key = (self.data, self.channels, self.recipe.crop, str(device))
        if key not in cache:
            folders = [self.data_root / d for d in self.data]
            cache[key] = PatchSampler(training_images(folders, self.channels, self.recipe.crop), self.recipe.crop, device)
        sampler = cache[key]
        # Jobs share the decoded stacks, not the random stream.
        clone = object.__new__(PatchSampler)
        clone.__dict__.update(sampler.__dict__)
        clone.generator = torch.Generator().manual_seed(generator_seed)
        return clone

    def prepare(self, model: nn.Module) -> nn.Module:
        """Layout changes for training speed (e.g. channels-last); the function is unchanged."""
        return model

    def loss(self, model: nn.Module, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    # ---- validation -------------------------------------------------------------
    def validate(self, model: nn.Module) -> dict:
        """{"loss": lower is better, plus readable figures}, on the validation images."""
        raise NotImplementedError
