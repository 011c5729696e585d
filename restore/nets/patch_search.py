"""Exhaustive k-nearest-neighbour patch search used by LIDIA.

Distances are sums of squared differences between patches, computed for all
pixel positions at once: one shifted difference image per offset followed by
a box sum over the patch footprint. Offsets are scanned one window row at a
time while a running top-k is kept, so memory stays at O(window * pixels)
instead of O(window^2 * pixels).
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
    image: torch.Tensor, patch: int, window: int, k: int, dilation: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Find the k nearest patches of every patch position within a search window.

    Args:
        image: B x 1 x (Hq + span + 2*window*dilation) x (Wq + ...) search image, where
            span = (patch - 1) * dilation. It must already be padded by
            ``window * dilation`` on every side (LIDIA pads with -1 so that outside
            patches are never chosen).
        patch: patch width in taps.
        window: half-width of the search window in steps of ``dilation``.
        k: neighbours to keep (the patch itself is always first, distance 0).
        dilation: tap spacing (2 searches a polyphase sub-grid at scale 1).

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
    centre = image[:, :, pad : pad + hq + span, pad : pad + wq + span]
    rows = torch.arange(hq, device=image.device).view(1, 1, hq, 1)
    cols = torch.arange(wq, device=image.device).view(1, 1, 1, wq)
    best_d = best_i = None
    steps = range(-window, window + 1)
    for dy in steps:
        oy = pad + dy * dilation
        shifted = torch.stack(
            [image[:, 0, oy : oy + hq + span, pad + dx * dilation : pad + dx * dilation + wq + span] for dx in steps],
            dim=1,
        )
        d = box_sum((shifted - centre) ** 2, patch, dilation)
        dxs = torch.tensor([dx * dilation for dx in steps], device=image.device).view(1, -1, 1, 1)
        idx = (rows + oy) * (ws - span) + (cols + pad + dxs)
        if dy == 0:
            # The patch itself must be neighbour 0 even where flat regions tie at 0.
            d[:, window] = -1.0
        idx = idx.expand(b, -1, -1, -1)
        if best_d is not None:
            d = torch.cat([best_d, d], dim=1)
            idx = torch.cat([best_i, idx], dim=1)
        best_d, pos = torch.topk(d, k, dim=1, largest=False, sorted=True)
        best_i = torch.gather(idx, 1, pos)
    best_d[:, 0] = 0.0
    return best_d, best_i
