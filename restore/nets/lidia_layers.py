"""Building blocks of the LIDIA network.

Tensors are kept neighbour-major, K x N x V (neighbours, pixel positions,
features), so that both halves of a separable layer are single large matrix
products: neighbours mix as (K', K) @ (K, N*V), features as (K*N, V) @ (V, V')
(a batched product when the bias is fused into it). The paper's N x K x V
layout needs N tiny batched products instead. Each layer runs its two
products in whichever order costs fewer multiply-adds, and the neighbour
product is always one GEMM over all K rows, never a sum of row blocks: with
K = 14 blocks that sum reads and writes the whole output once per block.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _order_costs(k_in: int, k_out: int, v_in: int, v_out: int) -> tuple[int, int]:
    """Multiply-adds per position: (neighbours mixed first, features mixed first)."""
    return k_out * k_in * v_in + k_out * v_in * v_out, k_in * v_in * v_out + k_out * k_in * v_out


def separable_macs(k_in: int, k_out: int, v_in: int, v_out: int) -> int:
    """Multiply-adds per position of a separable layer, in the cheaper product order."""
    return min(_order_costs(k_in, k_out, v_in, v_out))


def neighbours_first(k_in: int, k_out: int, v_in: int, v_out: int) -> bool:
    """Whether mixing neighbours before features costs no more multiply-adds."""
    nb_first, pix_first = _order_costs(k_in, k_out, v_in, v_out)
    return nb_first <= pix_first


class Separable(nn.Module):
    """y = relu(bn(W_nb @ x @ W_pix + bias)), on K_in x N x V_in tensors.

    Args:
        v_in, v_out: feature (pixel-axis) widths.
        k_in, k_out: neighbour-axis lengths.
        bn: BatchNorm over the K_out neighbour rows (statistics over N and V).
        relu: apply a ReLU at the end.
    """

    def __init__(self, v_in: int, v_out: int, k_in: int, k_out: int, *, bn: bool = False, relu: bool = True):
        super().__init__()
        gain = 2.0 if relu else 1.0
        self.pix = nn.Parameter(torch.randn(v_in, v_out) / math.sqrt(v_in))
        self.nb = nn.Parameter(torch.randn(k_out, k_in) * math.sqrt(gain / k_in))
        self.bias = nn.Parameter(torch.zeros(k_out, 1, v_out))
        self.bn = nn.BatchNorm1d(k_out) if bn else None
        self.relu = relu

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """Apply the layer to K_in x N x V_in, or to a list of row blocks that stack to it."""
        if isinstance(x, list):
            x = torch.cat(x, 0) if len(x) > 1 else x[0]
        k_in, n, v_in = x.shape
        k_out, v_out = self.nb.shape[0], self.pix.shape[1]
        if k_in != self.nb.shape[1]:
            raise ValueError(f"expected {self.nb.shape[1]} neighbour rows, got {k_in}")
        if neighbours_first(k_in, k_out, v_in, v_out):
            # One GEMM over all positions, then the feature product with the bias
            # fused into it (baddbmm broadcasts the K_out x 1 x V_out bias).
            z = (self.nb @ x.reshape(k_in, -1)).view(k_out, n, v_in)
            y = torch.baddbmm(self.bias, z, self.pix.expand(k_out, v_in, v_out))
        else:
            z = (x.reshape(-1, v_in) @ self.pix).view(k_in, -1)
            y = (self.nb @ z).view(k_out, n, v_out)
            # In place also under autograd: a product's backward needs its inputs, not its output.
            y = y.add_(self.bias)
        if self.bn is not None:
            y = self.bn(y.view(1, k_out, -1)).view(k_out, n, v_out)
        # In place also under autograd (neither a product nor BatchNorm needs its output
        # for the backward): saves a write and a read of the layer's largest tensor.
        return y.relu_() if self.relu else y

    @torch.no_grad()
    def fold_batchnorm(self) -> None:
        """Absorb an eval-mode BatchNorm into the neighbour matrix and bias (inference only)."""
        if self.bn is None:
            return
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        self.nb.mul_(scale[:, None])
        self.bias.copy_((self.bias - bn.running_mean.view(-1, 1, 1)) * scale.view(-1, 1, 1) + bn.bias.view(-1, 1, 1))
        self.bn = None


class MixedSeparable(nn.Module):
    """x -> a x + (1 - a) layer(x), with a learnable mixing weight a (init 0)."""

    def __init__(self, layer: Separable):
        super().__init__()
        self.layer = layer
        self.a = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * x + (1 - self.a) * self.layer(x)


class NeighbourWeights(nn.Module):
    """Per-neighbour scalar weights from patch distances.

    Input: N x K features (K-1 distances to the other neighbours and the
    centre patch's variance times n), mapped through exp(-|alpha| d) and a
    small MLP of ``depth`` Linear + BatchNorm + ReLU blocks and a final Linear.
    """

    def __init__(self, k: int, depth: int = 6):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(0.5))
        blocks: list[nn.Module] = []
        for _ in range(depth):
            blocks += [nn.Linear(k, k, bias=False), nn.BatchNorm1d(k), nn.ReLU()]
        blocks.append(nn.Linear(k, k))
        self.mlp = nn.Sequential(*blocks)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.exp(-self.alpha.abs() * features))

    @torch.no_grad()
    def fold_batchnorm(self) -> None:
        """Replace each Linear + eval BatchNorm pair by one Linear with bias."""
        layers = list(self.mlp)
        fused: list[nn.Module] = []
        i = 0
        while i < len(layers):
            layer = layers[i]
            if isinstance(layer, nn.Linear) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm1d):
                bn = layers[i + 1]
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                lin = nn.Linear(layer.in_features, layer.out_features, bias=True)
                lin.weight.copy_(layer.weight * scale[:, None])
                lin.bias.copy_(bn.bias - bn.running_mean * scale)
                fused.append(lin)
                i += 2
            else:
                fused.append(layer)
                i += 1
        self.mlp = nn.Sequential(*fused)


def row_variance(x: torch.Tensor, unbiased: bool) -> torch.Tensor:
    """Row variances of N x n ``x`` (two-pass: about 3x faster here than ``Tensor.var``)."""
    dev = x - x.mean(dim=1, keepdim=True)
    return dev.pow_(2).sum(dim=1) / (x.shape[1] - int(unbiased))


def cover_count(size: tuple[int, int], grid: tuple[int, int], p: int, d: int, like: torch.Tensor) -> torch.Tensor:
    """How many patches of a ``grid`` of positions (p x p, taps d apart) cover each pixel of ``size``.

    ``F.fold`` of ones, computed separably (small integers: exact).
    """
    rows, cols = like.new_zeros(size[0]), like.new_zeros(size[1])
    for i in range(p):
        rows[i * d : i * d + grid[0]] += 1
        cols[i * d : i * d + grid[1]] += 1
    return rows[:, None] * cols[None, :]


def blur(x: torch.Tensor) -> torch.Tensor:
    """Valid convolution with the outer product of [1/4, 1/2, 1/4] (per channel)."""
    c = x.shape[1]
    k1 = x.new_tensor([0.25, 0.5, 0.25])
    kernel = (k1[:, None] * k1[None, :]).expand(c, 1, 3, 3)
    return F.conv2d(x, kernel, groups=c)
