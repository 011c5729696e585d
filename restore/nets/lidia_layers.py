"""Building blocks of the LIDIA network.

Tensors are kept neighbour-major, K x N x V (neighbours, pixel positions,
features), so that both halves of a separable layer are single large matrix
products: features mix as (K*N, V) @ (V, V'), neighbours mix as
(K', K) @ (K, N*V'). On a CPU this runs near the GEMM peak, where the
paper's N x K x V layout needs N tiny batched products.
"""
from __future__ import annotations

import math

import torch
from torch import nn


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
        """Apply the layer to K_in x N x V_in, or to a list of row blocks that stack to it.

        A list avoids materialising the concatenation: the neighbour product is
        accumulated block by block.
        """
        parts = x if isinstance(x, list) else [x]
        n = parts[0].shape[1]
        k_in = sum(p.shape[0] for p in parts)
        k_out, v_out = self.nb.shape[0], self.pix.shape[1]
        if k_in != self.nb.shape[1]:
            raise ValueError(f"expected {self.nb.shape[1]} neighbour rows, got {k_in}")
        if k_out < k_in:  # shrink the neighbour axis first: fewer FLOPs
            y = self._mix(parts, lambda p: p).view(k_out, n, -1) @ self.pix
        else:
            y = self._mix(parts, lambda p: p @ self.pix).view(k_out, n, v_out)
        y = y + self.bias if torch.is_grad_enabled() else y.add_(self.bias)
        if self.bn is not None:
            y = self.bn(y.view(1, k_out, -1)).view(k_out, n, v_out)
        if not self.relu:
            return y
        return torch.relu(y) if torch.is_grad_enabled() else y.relu_()

    def _mix(self, parts: list[torch.Tensor], pre) -> torch.Tensor:
        """sum_i nb[:, rows_i] @ pre(part_i), each part flattened to rows x (N*V)."""
        out = None
        start = 0
        for part in parts:
            k = part.shape[0]
            block = self.nb[:, start : start + k]
            start += k
            flat = pre(part).reshape(k, -1)
            out = block @ flat if out is None else torch.addmm(out, block, flat)
        return out

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
