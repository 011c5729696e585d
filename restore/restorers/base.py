"""The restorer protocol, its result type and the name registry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch

from restore.errors import RestoreError
from restore.operators.base import Operator, check_image


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

    Subclasses set ``name``, ``tasks`` (the operator tasks they invert) and
    ``channels`` (the channel counts they accept), and implement ``_restore``.
    """

    name: ClassVar[str] = "base"
    tasks: ClassVar[tuple[str, ...]] = ()
    channels: ClassVar[tuple[int, ...] | None] = None  # None: any channel count
    description: ClassVar[str] = ""
    # Pixels of context one output pixel depends on, for the tiler.
    halo: int = 0

    def restore(
        self, y: torch.Tensor, operator: Operator, *, generator: torch.Generator | None = None
    ) -> Restoration:
        """Invert ``operator`` on the measurement ``y`` (B x C x H x W, [0, 1] range)."""
        self.check(y, operator)
        return self._restore(y, operator, generator=generator)

    def check(self, y: torch.Tensor, operator: Operator) -> None:
        """Refuse operators and inputs this restorer cannot handle, with a clear message."""
        check_image(y, "y")
        if operator.task not in self.tasks:
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
        _TASKS[name] = tuple(cls.tasks)
        return cls

    return wrap


def available() -> dict[str, type[Restorer]]:
    """Registered restorers by name."""
    return dict(_REGISTRY)  # type: ignore[arg-type]


def names_for_task(task: str) -> list[str]:
    """Registered restorers that invert operators of ``task``."""
    return sorted(name for name, tasks in _TASKS.items() if task in tasks)


def load(name: str, **kwargs) -> Restorer:
    """Build the restorer registered as ``name`` with its shipped weights.

    Args:
        name: registry name, e.g. ``"lidia"`` or ``"nlm"``.
        **kwargs: restorer-specific options (e.g. ``device``, ``adapt``).
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise RestoreError(f"unknown model '{name}'; available models: {known}")
    return _REGISTRY[name](**kwargs)
