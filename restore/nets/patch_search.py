"""Exhaustive k-nearest-neighbour patch search used by LIDIA.

Distances are sums of squared differences between patches, computed for all
pixel positions at once: one shifted difference image per offset followed by
a box sum over the patch footprint. Bands of position rows are processed in
turn, each with one top-k over all its offsets, so memory stays bounded.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Luminance weights used to search colour images on one channel.
LUMA = (0.2989, 0.5870, 0.1140)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """B x C x H x W -> B x 1 x H x W: the image itself if gray, else its luma."""
    if x.shape[1] == 1:
        return x
    w = x.new_tensor(LUMA).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def box_sum(d: torch.Tensor, patch: int, dilation: int) -> torch.Tensor:
    """Sum over a patch x patch footprint (taps ``dilation`` apart), valid region only.

    Separable: one pass per axis, grouped so each channel (offset) is summed alone.
    """
    c = d.shape[1]
    ones_v = d.new_ones(c, 1, patch, 1)
    ones_h = d.new_ones(c, 1, 1, patch)
    d = F.conv2d(d, ones_v, dilation=(dilation, 1), groups=c)
    return F.conv2d(d, ones_h, dilation=(1, dilation), groups=c)


@torch.no_grad()
def knn_search(
    image: torch.Tensor, patch: int, window: int, k: int, dilation: int = 1, budget: int = 1 << 23
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

    Returns:
        (dist, index): B x k x Hq x Wq squared distances (ascending) and, for each
        neighbour, the flat index of its patch in ``F.unfold(image, patch, dilation)``
        order (row-major over the (H - span) x (W - span) top-left corners).
    """
    b, _, hs, ws = image.shape
    pad = window * dilation
    span = (patch - 1) * dilation
    hq, wq = hs - 2 * pad - span, ws - 2 * pad - span
    if hq <= 0 or wq <= 0:
        raise ValueError(f"search image {hs}x{ws} too small for patch {patch}, window {window}")
    side = 2 * window + 1
    band = max(1, budget // (side * side * b * wq))
    dists, indices = [], []
    for r0 in range(0, hq, band):
        r1 = min(hq, r0 + band)
        d, i = _search_band(image, r0, r1, patch, window, k, dilation)
        dists.append(d)
        indices.append(i)
    return torch.cat(dists, dim=2), torch.cat(indices, dim=2)


def _search_band(
    image: torch.Tensor, r0: int, r1: int, patch: int, window: int, k: int, dilation: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """knn_search for the position rows r0..r1: all offsets' distances, then one top-k."""
    b, _, hs, ws = image.shape
    pad = window * dilation
    span = (patch - 1) * dilation
    wq = ws - 2 * pad - span
    rows = r1 - r0
    side = 2 * window + 1
    centre = image[:, 0, pad + r0 : pad + r1 + span, pad : pad + wq + span].unsqueeze(1)
    dist = image.new_empty(side * side, b, rows, wq)
    for a, dy in enumerate(range(-window, window + 1)):
        oy = pad + r0 + dy * dilation
        shifted = torch.stack(
            [image[:, 0, oy : oy + rows + span, dx * dilation : dx * dilation + wq + span] for dx in range(side)],
            dim=1,
        )
        d = box_sum((shifted - centre).pow_(2), patch, dilation)  # B x side x rows x wq
        dist[a * side : (a + 1) * side] = d.transpose(0, 1)
    # The patch itself must be neighbour 0 even where flat regions tie at 0.
    dist[(side * side) // 2] = -1.0
    best, pos = torch.topk(dist, k, dim=0, largest=False, sorted=True)
    best[0] = 0.0
    dy, dx = pos // side, pos % side
    row = torch.arange(r0, r1, device=image.device).view(1, 1, -1, 1) + dy * dilation
    col = torch.arange(wq, device=image.device).view(1, 1, 1, -1) + dx * dilation
    index = row * (ws - span) + col
    return best.permute(1, 0, 2, 3), index.permute(1, 0, 2, 3)
