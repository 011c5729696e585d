"""LIDIA inference in two streamed passes over small chunks of positions.

The stored forward (``Lidia.forward_stored``, used in training) keeps every
position's part-1 features (k x N x v: 1.4 GB per scale for a 512 x 384
image) until the aggregation branch has folded all patch estimates. At
inference this module keeps only the patch estimates instead:

1. pass 1, chunk by chunk: part-1 features, then the aggregation branch's patch
   estimate of each position (N x n per scale);
2. the estimates are folded and cut again (``Lidia._fold_unfold``);
3. pass 2, chunk by chunk: the part-1 features again (about 5% of the
   multiply-adds), the aggregation features, the joint layers and the noise
   estimate, all in one preallocated 4k x chunk x v block.

No tensor is then larger than the image's patch tables, and chunks of a few
hundred positions keep each pass's working set in the L2 cache, where the
64-wide products run at about twice their speed on GB-sized operands.

The first separable layer maps each neighbour's patch through the same
n x v matrix, so it is applied once per patch of the image (the projected
tables) rather than once per (position, neighbour): the gathered neighbours
are already v-wide and the layer is left with its k x k neighbour product.
Results equal the stored forward up to float rounding (products regrouped).
Under autocast the products run in its dtype (bf16 or fp16, with the same
roundings as autocast's) and estimates, aggregation and output stay fp32.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from restore.nets.lidia_layers import MixedSeparable, Separable


@dataclass
class _Layer:
    """A separable layer's maps in the compute dtype, eval BatchNorm folded in."""

    nb: torch.Tensor  # k_out x k_in
    pix: torch.Tensor  # v_in x v_out
    bias: torch.Tensor  # k_out x 1 x v_out
    bias32: torch.Tensor  # the same in fp32
    relu: bool
    mix: torch.Tensor | None = None  # MixedSeparable's a: x -> a x + (1 - a) layer(x)

    @classmethod
    def of(cls, layer: Separable | MixedSeparable | None, dtype: torch.dtype) -> "_Layer | None":
        if layer is None:
            return None
        mix = None
        if isinstance(layer, MixedSeparable):
            mix, layer = layer.a.to(dtype), layer.layer
        nb, bias = layer.nb, layer.bias
        if layer.bn is not None:  # eval mode: an affine map per neighbour row
            bn = layer.bn
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            nb = nb * scale[:, None]
            bias = (bias - bn.running_mean.view(-1, 1, 1)) * scale.view(-1, 1, 1) + bn.bias.view(-1, 1, 1)
        return cls(nb.to(dtype), layer.pix.to(dtype), bias.to(dtype), bias.float(), layer.relu, mix)


def forward(net, y: torch.Tensor, chunk: int) -> torch.Tensor:
    """``net(y)`` at inference, streamed: B x C x H x W model units in and out."""
    dev = y.device.type
    dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else torch.float32
    b, _, h, w = y.shape
    scales = net._scales(y)
    weights, centre = net._neighbour_weights(scales)
    with torch.autocast(dev, enabled=False):
        return _passes(net, scales, [wt.to(dtype) for wt in weights], centre.float(), dtype, chunk, (b, h, w))


def _passes(net, scales, weights, centre, dtype, chunk, shape) -> torch.Tensor:
    b, h, w = shape
    hq, wq = h + net.span, w + net.span
    k, v, n = net.cfg.k, net.cfg.width, net.cfg.n
    branches = [[_Layer.of(m, dtype) for m in (br.first, br.second, br.to_patch, br.from_patch)] for br in net.branches]
    projected = [sc.table.to(dtype) @ first.pix for sc, (first, *_) in zip(scales, branches)]
    for sc in scales:  # the centre patches were taken: from here on the tables are only needed projected
        sc.table = None
    joint, joint2, out = (_Layer.of(m, dtype) for m in (net.joint, net.joint2, net.out))
    total = b * hq * wq
    slices = [slice(i, min(i + chunk, total)) for i in range(0, total, chunk)]
    blocks = {}  # per chunk length m: the 4k x m x v work block and a k x m x v scratch

    def block(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        if m not in blocks:
            blocks[m] = centre.new_empty(4 * k, m, v, dtype=dtype), centre.new_empty(k, m, v, dtype=dtype)
        return blocks[m]

    def features(j: int, sl: slice, x: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
        first, second = branches[j][:2]
        rows = x[j * k : (j + 1) * k]
        torch.index_select(projected[j], 0, scales[j].index[:, sl].reshape(-1), out=rows.view(-1, v))
        rows.mul_(weights[j][sl].t().unsqueeze(-1))
        torch.mm(first.nb, rows.view(k, -1), out=scratch.view(k, -1))
        torch.clamp_min(scratch.add_(first.bias), 0, out=rows)
        return rows if second is None else rows.copy_(_apply(second, rows))

    # Pass 1: patch estimates of the aggregation branch (fp32).
    ests = [centre.new_empty(total, n) for _ in branches]
    for sl in slices:
        x, scratch = block(sl.stop - sl.start)
        for j in range(len(branches)):
            ests[j][sl] = _apply(branches[j][2], features(j, sl, x, scratch), fp32_out=True)[0]
    agg = [
        net._fold_unfold(e, sc, b, hq, wq, wt[:, 0].float() if sc.dilation > 1 and net.cfg.smooth_scale1 else None)
        for e, sc, wt in zip(ests, scales, weights)
    ]
    del ests

    # Pass 2: features again, aggregation features, joint layers, noise; denoised patches in place of ``centre``.
    for sl in slices:
        x, scratch = block(sl.stop - sl.start)
        for j in range(len(branches)):
            features(j, sl, x, scratch)
            _apply(branches[j][3], agg[j][sl].to(dtype).unsqueeze(0), out=x[(2 + j) * k : (3 + j) * k])
        z = _apply(joint, x)
        if joint2 is not None:
            z = _apply(joint2, z)
        centre[sl] -= _apply(out, z, fp32_out=True)[0]
    return net._aggregate(centre, b, h, w)


def _apply(layer: _Layer, x: torch.Tensor, out: torch.Tensor | None = None, fp32_out: bool = False) -> torch.Tensor:
    """relu(nb @ x @ pix + bias) (or its mix with x) of k_in x m x v_in ``x``, as plain GEMMs, into ``out``.

    ``fp32_out``: the bias is added in fp32 (as autocast does with its fp32 parameter).
    """
    k_in, m, v_in = x.shape
    k_out, v_out = layer.nb.shape[0], layer.pix.shape[1]
    if k_in == 1:  # one row in: features first, then the rank-1 neighbour product
        u = (x.view(m, v_in) @ layer.pix).unsqueeze(0)
        y = torch.mul(u, layer.nb.view(k_out, 1, 1), out=out) if k_out > 1 else (u if out is None else out.copy_(u))
    else:  # neighbours first (the cheaper order for every other layer of the net)
        z = (layer.nb @ x.reshape(k_in, -1)).view(k_out * m, v_in)
        y = torch.mm(z, layer.pix, out=None if out is None else out.view(k_out * m, v_out)).view(k_out, m, v_out)
    y = y.float().add_(layer.bias32) if fp32_out and y.dtype != torch.float32 else y.add_(layer.bias)
    if layer.relu:
        y = y.relu_()
    if layer.mix is not None:
        y = torch.lerp(y, x, layer.mix) if out is None else out.copy_(torch.lerp(y, x, layer.mix))
    return y
