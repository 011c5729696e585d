"""Instance adaptation of a LIDIA network (internal and external, as in the paper).

The network is fine-tuned for a few steps on crops of a target image: its own
first estimate (internal) or a similar clean image (external), with fresh
noise at the network's noise level added at every step. BatchNorm stays in
eval mode: a batch of four crops would give statistics far noisier than the
ones learned in training.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from restore.nets.lidia import Lidia


@dataclass(frozen=True)
class AdaptationSettings:
    """How long and how hard to adapt.

    The paper runs 5 epochs of 64 px blocks (about 80 steps, lr 1e-3) for
    internal and 10 epochs at lr 1e-2 for external adaptation; we default to
    fewer, smaller steps so that one image adapts in well under a minute on a
    laptop CPU.
    """

    steps: int = 20
    lr: float = 1e-3
    batch: int = 4
    crop: int = 48

    @classmethod
    def for_mode(cls, mode: str) -> "AdaptationSettings":
        return cls(steps=20, lr=1e-3) if mode == "internal" else cls(steps=40, lr=3e-3)


def random_crops(image: torch.Tensor, n: int, size: int, generator: torch.Generator | None) -> torch.Tensor:
    """n random size x size crops of a 1 x C x H x W image, with random flips/transposes."""
    _, c, h, w = image.shape
    size = min(size, h, w)
    crops = []
    for _ in range(n):
        i = int(torch.randint(0, h - size + 1, (1,), generator=generator))
        j = int(torch.randint(0, w - size + 1, (1,), generator=generator))
        crop = image[0, :, i : i + size, j : j + size]
        flips = torch.randint(0, 2, (3,), generator=generator).tolist()
        if flips[0]:
            crop = crop.flip(-1)
        if flips[1]:
            crop = crop.flip(-2)
        if flips[2]:
            crop = crop.transpose(-1, -2)
        crops.append(crop)
    return torch.stack(crops)


def adapt(
    net: Lidia,
    target: torch.Tensor,
    sigma: float,
    settings: AdaptationSettings,
    generator: torch.Generator | None = None,
) -> Lidia:
    """Fine-tune ``net`` in place on noisy crops of ``target`` (1 x C x H x W in [0, 1]).

    Args:
        net: an unfolded network (BatchNorm still present).
        target: the image to adapt to: the first estimate or a clean reference.
        sigma: noise std (0-1 units) the network was trained for.
        settings: steps, learning rate, batch, crop size.
        generator: seeds crops and noise.

    Returns:
        The same network, adapted, in eval mode.
    """
    net.eval()
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    device = next(net.parameters()).device
    for _ in range(settings.steps):
        clean = random_crops(target.cpu(), settings.batch, settings.crop, generator)
        noisy = clean + sigma * torch.randn(clean.shape, generator=generator)
        y, x = noisy.to(device) * 2 - 1, clean.to(device) * 2 - 1
        mean = y.mean(dim=(2, 3), keepdim=True)
        with torch.enable_grad():
            loss = torch.log10(((net(y - mean) - (x - mean)) ** 2).mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
        opt.step()
    return net.eval()
