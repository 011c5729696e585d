"""LIDIA inference in two streamed passes over small chunks of positions.

The stored forward (``Lidia.forward_stored``, used in training) keeps every
position's part-1 features (k x N x v: 1.4 GB per scale for a 512 x 384
image) and patch tables until the aggregation branch has folded all patch
estimates. At inference this module holds, per position, only its neighbours
and their weights (k ints and k floats per scale):

1. pass 1, chunk by chunk: part-1 features, the aggregation branch's patch
   estimates, added straight into the fold image of each scale;
2. the fold images are averaged (and smoothed at scale 1);
3. pass 2, chunk by chunk: the part-1 features again (about 5% of the
   multiply-adds), the aggregation features (patches cut from the averaged
   images), joint layers and noise estimate in one preallocated 4k x chunk x v
   block; the denoised patches are added straight into the output image.

No tensor is then larger than an image's projected patch table, and chunks
of a few hundred positions per thread keep each pass's working set in the L2
cache, where the 64-wide products run at about twice their speed on GB
operands. Threads: ``restore.nets.threads.op_threads``.

The first separable layer maps each neighbour's patch through the same
n x v matrix, so it is applied once per patch of the image (the projected
tables) rather than once per (position, neighbour): the gathered neighbours
are already v-wide and the layer is left with its k x k neighbour product.
Results equal the stored forward up to float rounding (products regrouped,
folds summed in another order). Under autocast (bf16, fp16) the products run
in its dtype on accelerators; on the CPU only the joint layers do (half
precision is slower there for everything else), and the rest stays fp32.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from restore.nets.lidia_layers import MixedSeparable, Separable, blur, cover_count, row_variance
from restore.nets.patch_search import box_sum
from restore.nets.threads import map_chunks, op_threads

# Positions per chunk of the neighbour-weight MLP (it allocates ~15 floats per position and layer).
WEIGHTS_CHUNK = 16_384


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


class _Grid:
    """Flat indices of patches in a B x C x H x W image: ``base[q] + offsets`` are the n values of patch q.

    Patches are p x p taps ``d`` apart, values channel-major as ``F.unfold`` orders
    them; patch q has its first tap at row q // cols, column q % cols of its image
    (q flat over B x rows x cols).
    """

    def __init__(self, shape: tuple[int, ...], p: int, d: int, device: torch.device):
        b, c, h, w = shape
        self.shape, self.span = shape, (p - 1) * d
        self.rows, self.cols = h - self.span, w - self.span
        ar = lambda m: torch.arange(m, device=device)  # noqa: E731
        self.offsets = (ar(c).view(-1, 1, 1) * h * w + ar(p).view(1, -1, 1) * d * w + ar(p).view(1, 1, -1) * d).view(-1)

    def index(self, q: torch.Tensor) -> torch.Tensor:
        """len(q) x n flat indices of patches q."""
        b, c, h, w = self.shape
        per_image = self.rows * self.cols
        i, r = q // per_image, q % per_image
        base = i * (c * h * w) + (r // self.cols) * w + r % self.cols
        return base.unsqueeze(1) + self.offsets


def forward(net, y: torch.Tensor, chunk: int) -> torch.Tensor:
    """``net(y)`` at inference, streamed: B x C x H x W model units in and out."""
    with op_threads() as threads:  # each chunk's products split across the threads
        return _forward(net, y, chunk * threads)


def _forward(net, y: torch.Tensor, chunk: int) -> torch.Tensor:
    dev = y.device
    dtype = torch.get_autocast_dtype(dev.type) if torch.is_autocast_enabled(dev.type) else torch.float32
    # On the CPU, half-precision elementwise work and small products are slower than fp32: there
    # only the joint layers (three quarters of the multiply-adds) run in the autocast dtype.
    joint_dtype, dtype = dtype, (torch.float32 if dev.type == "cpu" else dtype)
    cfg, (b, c, h, w) = net.cfg, y.shape
    p, k, v, n = cfg.patch, cfg.k, cfg.width, cfg.n
    hq, wq = h + net.span, w + net.span
    total = b * hq * wq
    slices = [slice(i, min(i + chunk, total)) for i in range(0, total, chunk)]
    scales = net._scales(y, tables=False)
    tables = [_Grid(sc.image.shape, p, sc.dilation, dev) for sc in scales]  # the neighbours' patches
    positions = torch.arange(total, device=dev)
    smooth = [sc.dilation > 1 and cfg.smooth_scale1 for sc in scales]

    # Neighbour weights (the MLP under the caller's autocast, as in the stored forward).
    weights = [torch.empty(total, k, device=dev, dtype=dtype) for _ in scales]

    def neighbour_weights(item: tuple[int, slice], state: dict) -> None:
        j, sl = item
        sc = scales[j]
        centre = sc.image.view(-1)[tables[j].index(sc.index[0, sl].long())]
        var = row_variance(centre, unbiased=True) * n
        weights[j][sl] = net.branches[j].weights(torch.cat([sc.dist[sl, 1:], var[:, None]], dim=1))

    map_chunks(neighbour_weights, [(j, slice(i, min(i + WEIGHTS_CHUNK, total)))
                                   for j in range(len(scales)) for i in range(0, total, WEIGHTS_CHUNK)])
    for sc in scales:
        sc.dist = None

    with torch.autocast(dev.type, enabled=False):
        branches = [[_Layer.of(m, dtype) for m in (br.first, br.second, br.to_patch, br.from_patch)]
                    for br in net.branches]
        projected = [_project(sc.image, p, sc.dilation, first.pix) for sc, (first, *_) in zip(scales, branches)]
        joint, joint2 = (_Layer.of(m, joint_dtype) for m in (net.joint, net.joint2))
        out = _Layer.of(net.out, dtype)
        # Where each position's patch lands in a scale's fold image, and in the output image.
        folds = [_Grid((b, c, hq + (p - 1) * sc.dilation, wq + (p - 1) * sc.dilation), p, sc.dilation, dev)
                 for sc in scales]
        output = _Grid((b, c, hq + net.span, wq + net.span), p, 1, dev)

        def block(m: int, state: dict) -> tuple[torch.Tensor, torch.Tensor]:
            """The 4k x m x v work block and k x m x v scratch for chunks of m positions."""
            if ("block", m) not in state:
                state["block", m] = (torch.empty(4 * k, m, v, device=dev, dtype=dtype),
                                     torch.empty(k, m, v, device=dev, dtype=dtype))
            return state["block", m]

        def features(j: int, sl: slice, x: torch.Tensor, scratch: torch.Tensor) -> None:
            first, second = branches[j][:2]
            rows = x[j * k : (j + 1) * k]
            torch.index_select(projected[j], 0, scales[j].index[:, sl].reshape(-1), out=rows.view(-1, v))
            rows.mul_(weights[j][sl].t().unsqueeze(-1))
            torch.mm(first.nb, rows.view(k, -1), out=scratch.view(k, -1))
            torch.clamp_min(scratch.add_(first.bias), 0, out=rows)
            if second is not None:
                rows.copy_(_apply(second, rows))

        def accumulate(state: dict, key: str, grid: _Grid, sl: slice, values: torch.Tensor) -> None:
            """Add chunk ``sl``'s patches to image ``key`` (of ``grid``'s shape)."""
            if key not in state:
                state[key] = torch.zeros(grid.shape, device=dev)
            state[key].view(-1).index_add_(0, grid.index(positions[sl]).view(-1), values.reshape(-1))

        # Pass 1: patch estimates of the aggregation branch, folded as they come.
        def pass1(sl: slice, state: dict) -> None:
            x, scratch = block(sl.stop - sl.start, state)
            for j in range(len(branches)):
                features(j, sl, x[: 2 * k], scratch)
                est = _apply(branches[j][2], x[j * k : (j + 1) * k], fp32_out=True)[0]
                accumulate(state, f"fold{j}", folds[j], sl, est / weights[j][sl, :1].float() if smooth[j] else est)

        folded = map_chunks(pass1, slices)
        agg = []
        for j, sc in enumerate(scales):
            img = folded[f"fold{j}"]
            img = img / cover_count(img.shape[-2:], (hq, wq), p, sc.dilation, img)
            agg.append(blur(F.pad(img, [1] * 4, mode="reflect")) if smooth[j] else img)

        # Pass 2: features again, aggregation features, joint layers, noise; denoised patches folded.
        beta = net.beta.detach().abs().float()
        wgt = torch.empty(total, device=dev)

        def pass2(sl: slice, state: dict) -> None:
            x, scratch = block(sl.stop - sl.start, state)
            for j in range(len(branches)):
                features(j, sl, x, scratch)
                a = agg[j].view(-1)[folds[j].index(positions[sl])]
                a = a * weights[j][sl, :1].float() if smooth[j] else a
                _apply(branches[j][3], a.to(dtype).unsqueeze(0), out=x[(2 + j) * k : (3 + j) * k])
            z = _apply(joint, x)
            if joint2 is not None:
                z = _apply(joint2, z)
            centre = scales[0].image.view(-1)[tables[0].index(scales[0].index[0, sl].long())]
            patch = centre.sub_(_apply(out, z, fp32_out=True)[0])
            wgt[sl] = torch.exp(-beta * row_variance(patch, unbiased=False))
            accumulate(state, "output", output, sl, patch * wgt[sl, None])

        s = net.span
        num = map_chunks(pass2, slices)["output"][:, :, s : s + h, s : s + w]
        return num / box_sum(wgt.view(b, 1, hq, wq), p, 1)


def _project(image: torch.Tensor, p: int, d: int, pix: torch.Tensor, rows: int = 64) -> torch.Tensor:
    """Every p x p patch (taps d apart) of B x C x Hs x Ws ``image`` times ``pix``: B*Ls x v, F.unfold's order.

    Bands of ``rows`` patch rows at a time, so that the unfolded patches are never all held.
    """
    b, _, hs, ws = image.shape
    span = (p - 1) * d
    hl, wl = hs - span, ws - span
    out = image.new_empty(b, hl, wl, pix.shape[1], dtype=pix.dtype)

    def band(item: tuple[int, int], state: dict) -> None:
        i, r0 = item
        r1 = min(hl, r0 + rows)
        cols = F.unfold(image[i : i + 1, :, r0 : r1 + span], p, dilation=d)[0]  # n x (r1 - r0) * wl
        torch.mm(cols.t().to(pix.dtype), pix, out=out[i, r0:r1].view(-1, pix.shape[1]))

    map_chunks(band, [(i, r0) for i in range(b) for r0 in range(0, hl, rows)])
    return out.view(b * hl * wl, -1)


def _apply(layer: _Layer, x: torch.Tensor, out: torch.Tensor | None = None, fp32_out: bool = False) -> torch.Tensor:
    """relu(nb @ x @ pix + bias) (or its mix with x) of k_in x m x v_in ``x``, as plain GEMMs, into ``out``.

    The products run in the layer's dtype; the result comes back in ``x``'s, the bias
    added in fp32 where either is (as autocast does with its fp32 parameter), or
    always with ``fp32_out``.
    """
    k_in, m, v_in = x.shape
    k_out, v_out = layer.nb.shape[0], layer.pix.shape[1]
    xin = x if x.dtype == layer.nb.dtype else x.to(layer.nb.dtype)
    target = out if out is not None and out.dtype == layer.nb.dtype else None
    if k_in == 1:  # one row in: features first, then the rank-1 neighbour product
        u = (xin.view(m, v_in) @ layer.pix).unsqueeze(0)
        y = torch.mul(u, layer.nb.view(k_out, 1, 1), out=target) if k_out > 1 else u
    else:  # neighbours first (the cheaper order for every other layer of the net)
        z = (layer.nb @ xin.reshape(k_in, -1)).view(k_out * m, v_in)
        y = torch.mm(z, layer.pix, out=None if target is None else target.view(k_out * m, v_out)).view(k_out, m, v_out)
    if y.dtype != torch.float32 and (fp32_out or x.dtype == torch.float32):
        y = y.float().add_(layer.bias32)
    else:
        y = y.add_(layer.bias)
    if layer.relu:
        y = y.relu_()
    if layer.mix is not None:
        y = torch.lerp(y, x.to(y.dtype), layer.mix.to(y.dtype))
    return y if out is None or y is out else out.copy_(y)
