"""LIDIA: a lightweight patch-based, non-local denoising network.

Re-implemented from Vaksman, Elad & Milanfar (CVPR-W 2020); facts in
``shared/specs/lidia.md``. For every pixel position the network gathers the
k nearest patches at two scales (full resolution and a blurred, dilated
scale), filters each stack with separable layers, runs an aggregation branch
that folds intermediate patch estimates into an image and cuts them again,
predicts the noise of the centre patch and averages the denoised patches
back with variance-dependent weights.

Input and output are in model units: [-1, 1] range with the per-channel mean
removed (see ``restore.restorers.lidia`` for the conversion).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from restore.nets import lidia_stream
from restore.nets.lidia_layers import (MixedSeparable, NeighbourWeights, Separable, blur, cover_count, row_variance,
                                      separable_macs)
from restore.nets.patch_search import box_sum, knn_search, luminance

# Value the search images are padded with, as in the authors' code: -1 is a
# valid model-unit value, so patches near the border may pick padding as
# neighbours (their weights were trained that way).
OUTSIDE = -1.0
# Positions per BatchNorm batch in batch-statistics mode (the authors' chunk).
BN_CHUNK = 40_000
# Positions per chunk of the streamed inference forward (``restore.nets.lidia_stream``).
STREAM_CHUNK = 256


@dataclass(frozen=True)
class LidiaConfig:
    """Architecture hyper-parameters (the JSON config shipped with the weights)."""

    channels: int = 1
    patch: int = 7
    width: int = 64
    k: int = 14
    window: int = 14
    light: bool = True  # LIDIA-S: without the mixed-in second blocks
    # Scale-1 aggregation as in the authors' code (divide by neighbour 0's weight,
    # fold, smooth, unfold, multiply back). Off only for weights trained without it.
    smooth_scale1: bool = True

    @classmethod
    def gray(cls, light: bool = True) -> "LidiaConfig":
        return cls(channels=1, patch=7, width=64, light=light)

    @classmethod
    def color(cls, light: bool = True) -> "LidiaConfig":
        return cls(channels=3, patch=5, width=80, light=light)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> "LidiaConfig":
        """Config from a weights file's JSON; configs that predate ``smooth_scale1`` were trained without it."""
        return cls(**{"smooth_scale1": False, **doc})

    @property
    def n(self) -> int:
        """Values per patch (all channels)."""
        return self.channels * self.patch**2


@dataclass
class _Scale:
    """Search results and patch table of one scale."""

    image: torch.Tensor  # padded search image B x C x Hs x Ws
    dist: torch.Tensor  # B*Hq*Wq x k
    index: torch.Tensor  # k x B*Hq*Wq, into ``table``
    table: torch.Tensor | None  # B*Ls x n: every patch of ``image``
    dilation: int


class LidiaBranch(nn.Module):
    """Part 1 and the aggregation branch of one scale."""

    def __init__(self, cfg: LidiaConfig):
        super().__init__()
        n, v, k = cfg.n, cfg.width, cfg.k
        self.weights = NeighbourWeights(k)
        self.first = Separable(n, v, k, k)
        self.second = None if cfg.light else MixedSeparable(Separable(v, v, k, k, bn=True))
        self.to_patch = Separable(v, n, k, 1, relu=False)
        self.from_patch = Separable(n, v, 1, k)

    def features(self, patches: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """k x N x n neighbour patches and their N x k weights -> k x N x v."""
        x = self.first(patches * weights.t().unsqueeze(-1))
        return x if self.second is None else self.second(x)


class Lidia(nn.Module):
    """The LIDIA denoiser (noise level fixed by training)."""

    def __init__(self, cfg: LidiaConfig):
        super().__init__()
        self.cfg = cfg
        k, v = cfg.k, cfg.width
        self.branches = nn.ModuleList([LidiaBranch(cfg), LidiaBranch(cfg)])
        self.joint = Separable(v, v, 4 * k, 4 * k, bn=True)
        self.joint2 = None if cfg.light else MixedSeparable(Separable(v, v, 4 * k, 4 * k, bn=True))
        self.out = Separable(v, cfg.n, 4 * k, 1, relu=False)
        self.beta = nn.Parameter(torch.tensor(0.5))
        # Positions per BatchNorm batch at inference; None: running statistics (eval mode).
        self.bn_chunk: int | None = None

    # ---- geometry -------------------------------------------------------
    @property
    def span(self) -> int:
        return self.cfg.patch - 1

    def _scales(self, y: torch.Tensor, tables: bool = True) -> list[_Scale]:
        """Both scales' search images and neighbours; their patch tables unless ``tables`` is False."""
        w = self.cfg.window
        s = self.span
        # The search images stay fp32 under autocast (the blur is a convolution autocast would round).
        with torch.autocast(y.device.type, enabled=False):
            y = y.float()
            # Scale 0: reflect so that every pixel is covered by all p*p patches.
            y0 = F.pad(F.pad(y, [s] * 4, mode="reflect"), [w] * 4, value=OUTSIDE)
            # Scale 1: blurred, dilated patches centred on the same pixels as scale 0.
            y1 = blur(F.pad(y, [s + s // 2 + 1] * 4, mode="reflect"))
            y1 = F.pad(y1, [2 * w] * 4, value=OUTSIDE)
        return [self._search(y0, 1, tables), self._search(y1, 2, tables)]

    def _search(self, image: torch.Tensor, dilation: int, table: bool = True) -> _Scale:
        cfg = self.cfg
        # The search is fp32 also under autocast: rounded distances would change which
        # neighbours are chosen (and, in training, what is learned).
        b, span = image.shape[0], (cfg.patch - 1) * dilation
        ls = (image.shape[-2] - span) * (image.shape[-1] - span)
        # int32 where it fits: half the memory, and indexing takes it as well.
        dtype = torch.int32 if b * ls < 2**31 else torch.int64
        with torch.autocast(image.device.type, enabled=False):
            dist, index = knn_search(luminance(image), cfg.patch, cfg.window, cfg.k, dilation, index_dtype=dtype)
        k = index.shape[1]
        table = F.unfold(image, cfg.patch, dilation=dilation).transpose(1, 2).reshape(b * ls, -1) if table else None
        index = index.add_(torch.arange(b, device=image.device, dtype=dtype).view(b, 1, 1, 1) * ls)
        index = index.permute(1, 0, 2, 3).reshape(k, -1)  # a view: knn_search returns k x B x Hq x Wq storage
        dist = dist.permute(0, 2, 3, 1).reshape(-1, k)
        return _Scale(image, dist, index, table, dilation)

    # ---- network stages -------------------------------------------------
    def _neighbour_weights(self, scales: list[_Scale]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per scale, the N x k weight of every neighbour at every position; and the scale-0 centre patches.

        One MLP pass over all positions: in batch-statistics mode its BatchNorms
        then see the whole image, as in the authors' code.
        """
        weights, centre0 = [], None
        for branch, sc in zip(self.branches, scales):
            centre = sc.table[sc.index[0]]  # N x n
            # The authors' feature: unbiased variance of the centre patch, times n.
            var = row_variance(centre, unbiased=True) * self.cfg.n
            weights.append(branch.weights(torch.cat([sc.dist[:, 1:], var[:, None]], dim=1)))
            centre0 = centre if centre0 is None else centre0
        return weights, centre0

    def _part1(
        self, scales: list[_Scale], weights: list[torch.Tensor], sl: slice
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Features and aggregation-branch patch estimates for positions ``sl``."""
        feats, estimates = [], []
        for branch, sc, w in zip(self.branches, scales, weights):
            x = branch.features(sc.table[sc.index[:, sl]], w[sl])
            feats.append(x)
            estimates.append(branch.to_patch(x)[0])
        return feats, estimates

    def _part1_all(
        self, scales: list[_Scale], weights: list[torch.Tensor], slices: list[slice]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``_part1`` over all positions, chunk by chunk, into preallocated outputs.

        Writing each chunk into its place avoids holding every chunk's result and
        concatenating them (a second full copy of a GB-sized tensor); small chunks
        keep each chunk's working set in cache.
        """
        if len(slices) == 1:
            return self._part1(scales, weights, slices[0])
        total = slices[-1].stop
        ref = scales[0].table
        feats = [ref.new_empty(self.cfg.k, total, self.cfg.width) for _ in scales]
        ests = [ref.new_empty(total, self.cfg.n) for _ in scales]
        for sl in slices:
            chunk_feats, chunk_ests = self._part1(scales, weights, sl)
            for j in range(len(scales)):
                feats[j][:, sl] = chunk_feats[j]
                ests[j][sl] = chunk_ests[j]
        return feats, ests

    def _fold_unfold(
        self, est: torch.Tensor, sc: _Scale, b: int, hq: int, wq: int, first: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Average overlapping patch estimates into an image, then cut the patches again.

        With ``first`` (scale 1: the N weights of neighbour 0), as in the authors'
        code: each estimate is divided by its weight, folded and averaged, smoothed
        with the [1/4 1/2 1/4] kernel after a one-pixel reflect pad, unfolded, and
        multiplied by the weight again.
        """
        p, d = self.cfg.patch, sc.dilation
        size = (hq + (p - 1) * d, wq + (p - 1) * d)
        if first is not None:
            est = est / first[:, None]
        cols = est.view(b, hq * wq, -1).transpose(1, 2)
        img = F.fold(cols, size, p, dilation=d)
        img = img / cover_count(size, (hq, wq), p, d, est)
        if first is not None:
            img = blur(F.pad(img, [1] * 4, mode="reflect"))
        cols = F.unfold(img, p, dilation=d).transpose(1, 2).reshape(b * hq * wq, -1)
        return cols if first is None else cols * first[:, None]

    def _part2(self, feats, agg_patches, sl: slice) -> torch.Tensor:
        aggs = [br.from_patch(a[sl].unsqueeze(0)) for br, a in zip(self.branches, agg_patches)]
        z = self.joint(feats + aggs)
        if self.joint2 is not None:
            z = self.joint2(z)
        return self.out(z)[0]

    def _aggregate(self, patches: torch.Tensor, b: int, h: int, w: int) -> torch.Tensor:
        """Weighted overlap-add of the denoised patches, cropped back to h x w."""
        p, s = self.cfg.patch, self.span
        hq, wq = h + s, w + s
        wgt = torch.exp(-self.beta.abs() * row_variance(patches, unbiased=False)).unsqueeze(1)
        cols = (patches * wgt).view(b, hq * wq, -1).transpose(1, 2)
        num = F.fold(cols, (h + 2 * s, w + 2 * s), p)[:, :, s : s + h, s : s + w]
        # The weight each output pixel gathers: a p x p box sum of the positions' weights.
        return num / box_sum(wgt.view(b, 1, hq, wq), p, 1)

    def forward(self, y: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Denoise ``y`` (B x C x H x W, model units); ``chunk`` bounds positions per pass.

        At inference (eval mode, no autograd) the two-pass streamed forward of
        ``restore.nets.lidia_stream`` runs, with ``chunk`` (default ``STREAM_CHUNK``)
        positions per pass; otherwise ``forward_stored``.
        """
        if not self.training and not torch.is_grad_enabled() and self.bn_chunk is None:
            return lidia_stream.forward(self, y, chunk or STREAM_CHUNK)
        return self.forward_stored(y, chunk)

    def forward_stored(self, y: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """The forward that keeps all part-1 features (training, batch statistics, reference).

        In batch-statistics mode (``use_batch_statistics``) the stages holding a
        BatchNorm run on chunks of ``bn_chunk`` positions instead, each chunk
        normalised with its own statistics.
        """
        b, _, h, w = y.shape
        hq, wq = h + self.span, w + self.span
        scales = self._scales(y)
        total = b * hq * wq
        slices = _slices(total, chunk)
        bn_slices = slices if self.bn_chunk is None else _slices(total, self.bn_chunk)
        weights, centre = self._neighbour_weights(scales)
        feats, ests = self._part1_all(scales, weights, slices if self.cfg.light else bn_slices)
        agg = [
            self._fold_unfold(e, sc, b, hq, wq, wt[:, 0] if sc.dilation > 1 and self.cfg.smooth_scale1 else None)
            for e, sc, wt in zip(ests, scales, weights)
        ]
        del ests
        out = torch.cat([self._part2([f[:, sl] for f in feats], agg, sl) for sl in bn_slices], dim=0)
        return self._aggregate(centre - out, b, h, w)

    def use_batch_statistics(self, chunk: int = BN_CHUNK) -> "Lidia":
        """Normalise with batch statistics at inference, as the authors' code does.

        Every BatchNorm forgets its running statistics; the neighbour-weight MLPs
        then normalise over all positions of a call, the separable layers over
        chunks of ``chunk`` positions. Irreversible: use on an inference copy.
        """
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None
        self.bn_chunk = chunk
        return self

    def fold_batchnorm(self) -> "Lidia":
        """Fold every BatchNorm into the preceding linear map; call after ``eval()``."""
        if self.bn_chunk is not None:
            raise ValueError("a network in batch-statistics mode has no running statistics to fold")
        for m in self.modules():
            if m is not self and hasattr(m, "fold_batchnorm"):
                m.fold_batchnorm()
        return self


def _slices(total: int, chunk: int | None) -> list[slice]:
    step = total if chunk is None else chunk
    return [slice(i, min(i + step, total)) for i in range(0, total, step)]


def flops_per_pixel(cfg: LidiaConfig, streamed: bool = False) -> float:
    """Multiply-adds x 2 of the network per output pixel (search excluded).

    ``streamed``: as the inference forward runs (``lidia_stream``): the first layer's
    pixel product once per image patch (counted as one per position), its neighbour
    product (and the second block) in both passes; else as ``forward_stored`` runs.
    """
    n, v, k = cfg.n, cfg.width, cfg.k
    sep = lambda vi, vo, ki, ko: separable_macs(ki, ko, vi, vo)  # noqa: E731
    second = 0 if cfg.light else sep(v, v, k, k)
    first = n * v + 2 * (k * k * v + second) if streamed else sep(n, v, k, k) + second
    per_scale = first + sep(v, n, k, 1) + sep(n, v, 1, k)
    joint = sep(v, v, 4 * k, 4 * k) * (1 if cfg.light else 2) + sep(v, n, 4 * k, 1)
    mlp = 7 * k * k
    return 2.0 * (2 * (per_scale + mlp) + joint)
