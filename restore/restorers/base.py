"""The restorer protocol, its result type and the name registry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch

from restore.devices import check_device
from restore.errors import RestoreError
from restore.nets.threads import op_threads
from restore.noise_field import GeneratorNoise, NoiseSource
from restore.operators.base import Operator, check_image
from restore.operators.denoise import Denoise
from restore.operators.noise_level import estimate_image_sigma
from restore.options import NoOptions, build_options
from restore.pixel_values import check_finite, check_unit_range, operator_noise_std
from restore.tasks import TASK_TABLE


@dataclass
class Restoration:
    """What a restorer returns.

    Attributes:
        image: the estimate, B x C x H x W in [0, 1] (not clipped unless the method clips).
        samples: posterior samples S x B x C x H x W, for methods that draw them.
        std: per-pixel posterior standard deviation, for methods that give one.
        info: method-specific facts worth reporting (e.g. the sigma that was estimated).
    """

    image: torch.Tensor
    samples: torch.Tensor | None = None
    std: torch.Tensor | None = None
    info: dict = field(default_factory=dict)


class Restorer:
    """Base class: ``restore(y, operator, generator=...) -> Restoration``.

    Subclasses set ``name``, ``operators`` (the operator types they invert,
    subclasses included: ``(Operator,)`` for any linear operator) and
    ``channels`` (the channel counts they accept), and implement ``_restore``.
    Their ``tasks`` follow from ``operators`` and the task table
    (``restore.tasks``); the tasks' names label them, restorers do not branch on them.
    Stochastic restorers set ``stochastic = True`` and draw every random number
    through the ``noise`` source their ``_restore`` receives (the pipeline passes
    one tied to pixel positions, so that overlapping tiles agree).

    Options are declared, not swallowed: ``Options`` is a frozen dataclass of
    ``restore.options.option`` fields, built from the constructor's keywords
    (an unknown or ill-typed one raises ``RestoreError``) and kept as
    ``self.options``; ``setup`` is where a subclass reads them.
    """

    Options: ClassVar[type] = NoOptions

    name: ClassVar[str] = "base"
    operators: ClassVar[tuple[type[Operator], ...]] = ()
    tasks: ClassVar[tuple[str, ...]] = ()  # set by ``register`` from ``operators``
    channels: ClassVar[tuple[int, ...] | None] = None  # None: any channel count
    description: ClassVar[str] = ""
    # Pixels of context one output pixel depends on, for the tiler.
    halo: int = 0
    # Input sides the net needs to be a multiple of (e.g. 16 for a 4-level U-Net).
    tile_multiple: int = 1
    stochastic: ClassVar[bool] = False
    # How --precision fp16 / bf16 fare: {"fp16": "VERDICT: evidence", "bf16": ...}, VERDICT one of
    # safe, small loss, unsafe, untested or no effect (benchmarks/studies/precision_safety.py measures
    # them; `restore models NAME` shows them). The pipeline redoes a NaN or inf batch in fp32 either way.
    half_precision: ClassVar[dict[str, str]] = {"fp16": "untested: not measured", "bf16": "untested: not measured"}
    # A restorer read from a file the user names: "NAME:VALUE" loads NAME with this option set to VALUE
    # ("spandrel:model.safetensors" sets path); None: the name takes no value.
    path_option: ClassVar[str | None] = None
    device: torch.device = torch.device("cpu")

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Keep ``operators`` and ``tasks`` in step: either one declared gives the other.

        ``operators`` is the declaration; a subclass that names ``tasks`` instead (a
        restorer written for an earlier release) inverts those tasks' operator types.
        """
        super().__init_subclass__(**kwargs)
        if "operators" in cls.__dict__:
            cls.tasks = tasks_inverted(cls.operators)
        elif "tasks" in cls.__dict__:
            cls.operators = tuple(kind for name in cls.tasks for kind in TASK_TABLE[name].operator_types())

    def __init__(self, *, device: str | torch.device = "cpu", progress: bool | None = None, **options: object) -> None:
        """Args: device to run on; progress: show a bar over long loops (None: when stderr is a
        terminal); options: the restorer's declared ``Options``, by name."""
        self.options = build_options(type(self).Options, options, self.name)
        self.device = torch.device(device)
        self.progress = progress
        self.setup()

    def setup(self) -> None:
        """Subclass hook: read ``self.options`` once (caches, weights catalogue)."""

    def restore(
        self,
        y: torch.Tensor,
        operator: Operator,
        *,
        generator: torch.Generator | None = None,
        noise: NoiseSource | None = None,
    ) -> Restoration:
        """Invert ``operator`` on the measurement ``y`` (B x C x H x W, [0, 1] range).

        Args:
            y: the measurement.
            operator: the degradation y was made with (its noise model included).
            generator: seeds every random choice.
            noise: for stochastic restorers, where their Gaussian draws come from
                (default: ``generator``).
        """
        self.check(y, operator)
        # Intra-op threads only as far as CPUs are idle now: on a shared CPU every one of a restorer's
        # many small operations would wait a time slice at its barrier (VBLE: 6-8x slower on two threads
        # than on one beside another job); see restore.nets.threads.
        with op_threads():
            if self.stochastic:
                return self._restore(y, operator, generator=generator, noise=noise or GeneratorNoise(generator))
            return self._restore(y, operator, generator=generator)

    def prepare(
        self, sample: torch.Tensor, operator: Operator, *, generator: torch.Generator | None = None
    ) -> tuple["Restorer", Operator]:
        """Whole-image decisions, made once before an image is cut into tiles.

        Returns the restorer and operator to run on every tile: e.g. the noise
        level estimated on ``sample`` (a representative 1 x C x h x w crop) rather
        than per tile, or a network adapted to the image once. Default: the
        noise level of a denoising operator without one is estimated.
        """
        if isinstance(operator, Denoise) and operator.sigma <= 0:
            operator = Denoise(sigma=estimate_image_sigma(sample))
        return self, operator

    def to(self, device: str | torch.device) -> "Restorer":
        """Run on ``device`` from now on (returns self)."""
        self.device = torch.device(device)
        return self

    def check(self, y: torch.Tensor, operator: Operator) -> None:
        """Refuse operators and inputs this restorer cannot handle, with a clear message.

        Inputs with NaN or inf pixels, or float values far outside [0, 1] (an image
        in 0-255 given as floats), are refused rather than restored into garbage.
        """
        check_image(y, "y")
        check_finite(y, "y", "replace or mask them first (e.g. torch.nan_to_num(y))")
        check_unit_range(y, "y", "divide it by its full-scale value first (e.g. y / {scale})", operator_noise_std(operator))
        if not isinstance(operator, self.operators):
            supporting = ", ".join(names_for_task(operator.task)) or "none"
            raise RestoreError(
                f"model '{self.name}' does not support task '{operator.task}' "
                f"(it supports: {', '.join(self.tasks)}); models for '{operator.task}': {supporting}"
            )
        if self.channels is not None and y.shape[1] not in self.channels:
            raise RestoreError(
                f"model '{self.name}' takes images with {' or '.join(map(str, self.channels))} "
                f"channels, got {y.shape[1]}"
            )

    def _restore(
        self, y: torch.Tensor, operator: Operator, *, generator: torch.Generator | None
    ) -> Restoration:
        raise NotImplementedError


_REGISTRY: dict[str, Callable[..., Restorer]] = {}
_TASKS: dict[str, tuple[str, ...]] = {}


def register(name: str) -> Callable[[type[Restorer]], type[Restorer]]:
    """Class decorator: make a restorer loadable as ``restore.load(name)``."""

    def wrap(cls: type[Restorer]) -> type[Restorer]:
        if name in _REGISTRY:
            raise RuntimeError(f"restorer '{name}' registered twice")
        _REGISTRY[name] = cls
        _TASKS[name] = cls.tasks
        return cls

    return wrap


def tasks_inverted(operators: tuple[type[Operator], ...]) -> tuple[str, ...]:
    """The tasks of the task table whose operator is one of ``operators`` (or a subclass)."""
    return tuple(t.name for t in TASK_TABLE.values() if issubclass(t.operator_type(), operators))


def available() -> dict[str, type[Restorer]]:
    """Registered restorers by name."""
    return dict(_REGISTRY)  # type: ignore[arg-type]


def names_for_task(task: str) -> list[str]:
    """Registered restorers that invert operators of ``task``."""
    return sorted(name for name, tasks in _TASKS.items() if task in tasks)


def load(name: str, *, device: str | torch.device = "auto", progress: bool | None = None, **options: object) -> Restorer:
    """Build the restorer registered as ``name`` with its shipped weights.

    Args:
        name: registry name, e.g. ``"lidia"`` or ``"nlm"``; ``"spandrel:FILE"`` for a model file.
        device: where it runs: "auto" (CUDA, then MPS, then CPU; ``restorer.device`` says which), "cpu",
            "cuda", "cuda:N" or "mps", refused up front when absent here.
        progress: show a bar over long loops (None: when stderr is a terminal).
        **options: its declared options (``restore models NAME`` lists them), e.g. ``steps=5``.
            Text values (``"5"``) are converted by the declared type.

    Raises:
        RestoreError: an unknown model, or an unknown, ill-typed or out-of-range option.
    """
    base, named = split_model_name(name)
    for key in set(named) & set(options):
        raise RestoreError(f"option '{key}' of model '{base}' given twice (in the name '{name}' and as an option)")
    return registered(base)(device=check_device(device), progress=progress, **named, **options)


def split_model_name(name: str) -> tuple[str, dict[str, str]]:
    """"spandrel:FILE" -> ("spandrel", {"path": "FILE"}) for restorers with a ``path_option``; other names as they are."""
    if isinstance(name, str) and name not in _REGISTRY and ":" in name:
        base, _, value = name.partition(":")
        cls = _REGISTRY.get(base)
        if cls is not None and getattr(cls, "path_option", None) and value:
            return base, {cls.path_option: value}  # type: ignore[attr-defined]
    return name, {}


def registered(name: str) -> type[Restorer]:
    """The restorer class registered as ``name`` (or ``NAME:VALUE``, see ``split_model_name``), or an error
    listing the registered ones."""
    name = split_model_name(name)[0]
    if not isinstance(name, str) or name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise RestoreError(f"unknown model '{name}'; available models: {known}")
    return _REGISTRY[name]  # type: ignore[return-value]
