"""Composition of operators, applied left to right."""
from __future__ import annotations

import math

import torch
from torch import nn

from restore.errors import RestoreError
from restore.operators.base import Operator, check_image
from restore.operators.noise import NoiseModel


class Compose(Operator):
    """A = A_n ... A_2 A_1 for ``Compose(A_1, A_2, ..., A_n)``.

    Operators apply in the order given: ``Compose(blur, down)(x) == down(blur(x))``.
    The adjoint applies the adjoints in reverse order, and ``pinv`` chains the
    pinvs in reverse order (a pseudo-inverse of the product only when the
    factors allow it; otherwise a good initialisation).

    Noise: only the last operator's noise model is used (or ``noise``); the
    noise of inner operators is ignored, since the measurement is noised once.

    Args:
        *ops: the operators, first applied first.
        task: the CLI task; default the last operator's.
        noise: a noise model; default the last operator's.

    Example:
        >>> op = Compose(Blur(gaussian_kernel(1.0)), Downsample(2, sigma=0.01))
        >>> op(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(self, *ops: Operator, task: str | None = None, noise: NoiseModel | None = None) -> None:
        if not ops:
            raise RestoreError("Compose needs at least one operator")
        for i, op in enumerate(ops):
            if not isinstance(op, Operator):
                raise RestoreError(f"Compose argument {i} must be an Operator, got {type(op).__name__}")
        super().__init__(noise if noise is not None else ops[-1].noise)
        self.ops = nn.ModuleList(ops)
        self.task = task if task is not None else ops[-1].task
        self.scale = math.prod(op.scale for op in ops)
        # Op k's halo is in units of its own input, which is 1 / (scales before k) original pixels.
        halo, before = 0, 1.0
        for op in ops:
            halo += math.ceil(op.halo / before - 1e-9)
            before *= op.scale
        self.halo = halo

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A_n(...A_1(x))."""
        check_image(x)
        for op in self.ops:
            x = op(x)
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A_1^T(...A_n^T(y))."""
        check_image(y, "y")
        for op in reversed(self.ops):
            y = op.adjoint(y)
        return y

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """A_1^+(...A_n^+(y))."""
        check_image(y, "y")
        for op in reversed(self.ops):
            y = op.pinv(y)
        return y

    def for_tiles(self, windows: list[tuple[int, int, int, int]]) -> "Compose":
        """Itself when every factor acts the same everywhere; position-dependent factors are refused."""
        if any(op.for_tiles(windows) is not op for op in self.ops):
            raise RestoreError("a composed operator with a mask cannot be cut into tiles; run it untiled (--tile 0)")
        return self

    def input_shape(self, y_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of x, through every operator's ``input_shape`` in reverse."""
        for op in reversed(self.ops):
            y_shape = op.input_shape(y_shape)
        return y_shape
