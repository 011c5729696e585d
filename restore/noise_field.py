"""Random numbers for stochastic restorers: from a generator, or tied to pixel positions.

A stochastic restorer (posterior sampling, diffusion) draws its noise through a
``NoiseSource``. Called directly it gets ``GeneratorNoise`` (an ordinary seeded
stream). Under the tiling pipeline it gets ``PositionalNoise``: the value at a
pixel is a hash of (seed, sample, channel, global row, global column), so two
overlapping tiles draw the *same* noise for the same place in the image and no
seam appears where they are blended.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

_MASK32 = 0xFFFFFFFF


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer (lowbias32) on int64 tensors holding 32-bit values.

    int64 products of two 32-bit values may wrap; the low 32 bits kept are exact.
    """
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def _combine(h: torch.Tensor, v: torch.Tensor | int) -> torch.Tensor:
    return _hash32(h ^ ((v * 0x9E3779B1) & _MASK32))


def positional_normal(
    seed: int, shape: Sequence[int], rows: torch.Tensor, cols: torch.Tensor, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Standard normal values N x C x len(rows) x len(cols), a function of their indices only.

    Args:
        seed: the stream.
        shape: (N, C, H, W); N indexes independent draws (e.g. samples), C channels.
        rows, cols: global integer coordinates of the H rows and W columns.
    """
    n, c, h, w = shape
    dev = torch.device(device)
    key = _hash32(torch.tensor(seed, dtype=torch.int64, device=dev))
    idx_n = torch.arange(n, device=dev).view(n, 1, 1, 1)
    idx_c = torch.arange(c, device=dev).view(1, c, 1, 1)
    r = rows.to(dev, torch.int64).view(1, 1, h, 1)
    q = cols.to(dev, torch.int64).view(1, 1, 1, w)
    base = _combine(_combine(_combine(_combine(key, idx_n), idx_c), r), q)
    # Two independent uniforms in (0, 1), then Box-Muller.
    u1 = (_combine(base, 1).double() + 0.5) / 2**32
    u2 = (_combine(base, 2).double() + 0.5) / 2**32
    z = torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)
    return z.float()


class NoiseSource:
    """Draws standard normal tensors shaped like a batch of images (or of their latents)."""

    def randn(self, shape: Sequence[int], *, stride: int = 1, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Noise of ``shape`` = (B, C, H, W) on a grid ``stride`` image pixels apart (latents: stride > 1)."""
        raise NotImplementedError


class GeneratorNoise(NoiseSource):
    """Noise from a torch generator (seeded stream; the default outside the pipeline)."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def randn(self, shape, *, stride=1, device="cpu", dtype=torch.float32):  # noqa: D102
        gen_device = self.generator.device if self.generator is not None else device
        return torch.randn(tuple(shape), generator=self.generator, device=gen_device).to(device, dtype)


class PositionalNoise(NoiseSource):
    """Noise tied to global image positions: tile b of a batch starts at ``origins[b]`` (row, col).

    Each call draws a fresh field (a call counter enters the hash), so that an
    iterative sampler's successive draws are independent, yet the k-th draw of
    two tiles agrees where they overlap.
    """

    def __init__(self, seed: int, origins: Sequence[tuple[int, int]]) -> None:
        self.seed = int(seed)
        self.origins = list(origins)
        self.calls = 0

    def randn(self, shape, *, stride=1, device="cpu", dtype=torch.float32):  # noqa: D102
        b, c, h, w = shape
        if b != len(self.origins):
            raise ValueError(f"noise for {b} tiles requested, {len(self.origins)} origins known")
        seed = (self.seed * 1_000_003 + self.calls) & _MASK32
        self.calls += 1
        out = []
        for r0, c0 in self.origins:
            rows = torch.arange(h) + r0 // stride
            cols = torch.arange(w) + c0 // stride
            out.append(positional_normal(seed, (1, c, h, w), rows, cols, device))
        return torch.cat(out).to(device, dtype)
