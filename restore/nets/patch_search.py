"""Exhaustive k-nearest-neighbour patch search used by LIDIA.

Distances are sums of squared differences between patches, computed for all
pixel positions at once: one difference image per offset, summed over the
patch footprint by shifted adds (rows first, then columns, taps in order: the
same sums, to the bit, as a separable box-filter convolution). Bands of
position rows are processed in turn so that memory stays bounded.

Selecting the k nearest of the (2 w + 1)^2 candidates is most of the cost
with a plain top-k (a scalar partial sort, ~8 ns a candidate). Candidates are
grouped instead (``GROUP`` neighbouring offsets of one row); the k + 1 groups
with the smallest minima hold the k + 1 nearest candidates, so a top-k over
group minima and one over those groups' members gives the same answer on
about a quarter of the candidates. Where two of the k + 1 nearest distances
are equal (reflect-padded borders give exact mirror ties) the order would be
up to the sort, so those positions rerun the full top-k over all candidates,
in the same order as a plain search: the result equals it exactly.
"""
from __future__ import annotations

import math

import torch

from restore.nets.threads import map_chunks, op_threads

# Luminance weights used to search colour images on one channel.
LUMA = (0.2989, 0.5870, 0.1140)
# Offsets per candidate group of the two-stage selection.
GROUP = 8


def luminance(x: torch.Tensor) -> torch.Tensor:
    """B x C x H x W -> B x 1 x H x W: the image itself if gray, else its luma."""
    if x.shape[1] == 1:
        return x
    w = x.new_tensor(LUMA).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def box_sum(d: torch.Tensor, patch: int, dilation: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over a patch x patch footprint (taps ``dilation`` apart) of ... x H x W, valid region only.

    Rows first, then columns, each a left-to-right sum of shifted slices; the
    last sum goes to ``out`` when given.
    """
    span = (patch - 1) * dilation
    h, w = d.shape[-2] - span, d.shape[-1] - span
    v = _sum([d[..., i * dilation : i * dilation + h, :] for i in range(patch)])
    return _sum([v[..., j * dilation : j * dilation + w] for j in range(patch)], out)


def _sum(terms: list[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """((t0 + t1) + t2) + ..., the last addition into ``out`` when given."""
    if len(terms) == 1:
        return terms[0].clone() if out is None else out.copy_(terms[0])
    acc = terms[0]
    for i, t in enumerate(terms[1:], 1):
        last = i == len(terms) - 1
        if last and out is not None:
            return torch.add(acc, t, out=out)
        acc = acc + t if i == 1 else acc.add_(t)
    return acc


@torch.no_grad()
def knn_search(
    image: torch.Tensor, patch: int, window: int, k: int, dilation: int = 1, budget: int = 1 << 21,
    index_dtype: torch.dtype = torch.int64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Find the k nearest patches of every patch position within a search window.

    Args:
        image: B x 1 x (Hq + span + 2*window*dilation) x (Wq + ...) search image, where
            span = (patch - 1) * dilation. It must already be padded by
            ``window * dilation`` on every side (LIDIA pads with -1, as the authors'
            code does, so border patches may choose padding as neighbours).
        patch: patch width in taps.
        window: half-width of the search window in steps of ``dilation``.
        k: neighbours to keep (the patch itself is always first, distance 0).
        dilation: tap spacing (2 searches a polyphase sub-grid at scale 1).
        budget: distance values held at once; rows of positions are processed in
            bands that fit it.
        index_dtype: integer type of the returned indices.

    Returns:
        (dist, index): B x k x Hq x Wq squared distances (ascending) and, for each
        neighbour, the flat index of its patch in ``F.unfold(image, patch, dilation)``
        order (row-major over the (H - span) x (W - span) top-left corners).
        Both are views of k x B x Hq x Wq tensors.
    """
    b, _, hs, ws = image.shape
    pad = window * dilation
    span = (patch - 1) * dilation
    hq, wq = hs - 2 * pad - span, ws - 2 * pad - span
    if hq <= 0 or wq <= 0:
        raise ValueError(f"search image {hs}x{ws} too small for patch {patch}, window {window}")
    side = 2 * window + 1
    slot = math.ceil(side / GROUP) * GROUP  # offsets of one row, padded to whole groups
    rows = max(1, min(hq, budget // (side * slot * wq)))
    dist = image.new_empty(k, b, hq, wq)
    index = torch.empty(k, b, hq, wq, dtype=index_dtype, device=image.device)

    def band(item: tuple[int, int], state: dict) -> None:
        i, r0 = item
        n = min(rows, hq - r0)
        # Distances of the offsets (dy, dx) of a band, as side x slot x n x wq; the padding
        # slots stay +inf. The centre offset (the patch itself) is set to -1: it must be
        # neighbour 0 even where flat regions tie at 0.
        if n not in state:
            state[n] = image.new_full((side, slot, n, wq), float("inf"))
        buf = state[n]
        _band_distances(image[i, 0], buf, r0, patch, window, dilation)
        buf[window, window] = -1.0
        best, dy, dx = _select(buf, side, k)
        best[0] = 0.0
        row = torch.arange(r0, r0 + n, device=image.device).view(1, -1, 1) + dy.view(k, n, wq) * dilation
        col = torch.arange(wq, device=image.device).view(1, 1, -1) + dx.view(k, n, wq) * dilation
        dist[:, i, r0 : r0 + n] = best.view(k, n, wq)
        index[:, i, r0 : r0 + n] = row * (ws - span) + col

    with op_threads():
        map_chunks(band, [(i, r0) for i in range(b) for r0 in range(0, hq, rows)])
    return dist.transpose(0, 1), index.transpose(0, 1)


def _band_distances(img: torch.Tensor, out: torch.Tensor, r0: int, patch: int, window: int, dilation: int) -> None:
    """Fill ``out[dy, :side]`` (side x side x n x wq) with the band's distances for every offset."""
    side, n, wq = 2 * window + 1, out.shape[2], out.shape[3]
    pad, span, d = window * dilation, (patch - 1) * dilation, dilation
    sr, sc = img.stride()
    centre = img[pad + r0 : pad + r0 + n + span, pad : pad + wq + span]
    for a in range(side):
        oy = pad + r0 + (a - window) * d
        # The rows of offset dy, one shifted copy per dx (a view: dx steps d columns).
        shifted = img.as_strided((side, n + span, wq + span), (d * sc, sr, sc), img.storage_offset() + oy * sr)
        box_sum((shifted - centre).pow_(2), patch, d, out=out[a, :side])


def _select(band: torch.Tensor, side: int, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k smallest of each position's candidates in ``band`` (side x slot x n x wq), ascending.

    Returns (values, dy, dx), each k x n*wq, offsets as window indices.
    """
    slot = band.shape[1]
    m = band.shape[2] * band.shape[3]
    groups = band.view(side * slot // GROUP, GROUP, m)
    if groups.shape[0] <= k or side * side <= k:  # too few groups: a plain top-k
        best, off = torch.topk(band[:, :side].reshape(side * side, m), k, dim=0, largest=False, sorted=True)
        return best, off // side, off % side
    # The k + 1 groups with the smallest minima hold the k + 1 nearest candidates.
    _, top = torch.topk(groups.amin(1), k + 1, dim=0, largest=False, sorted=False)
    cand = groups.gather(0, top.unsqueeze(1).expand(-1, GROUP, -1)).view(-1, m)
    best, pos = torch.topk(cand, k + 1, dim=0, largest=False, sorted=True)
    off = top.gather(0, pos // GROUP) * GROUP + pos % GROUP
    dy, dx = off // slot, off % slot
    # Equal distances among the k + 1 nearest: redo those positions with the full top-k.
    tied = (best[1:] == best[:-1]).any(0).nonzero().squeeze(1)
    best, dy, dx = best[:k], dy[:k], dx[:k]
    if tied.numel():
        full = band.view(side, slot, m)[:, :side, tied].reshape(side * side, -1)
        tb, toff = torch.topk(full, k, dim=0, largest=False, sorted=True)
        best[:, tied], dy[:, tied], dx[:, tied] = tb, toff // side, toff % side
    return best, dy, dx
