"""Random training patches cut on the training device itself.

A GPU step of a small net takes milliseconds, far less than cropping and
stacking patches in Python on the CPU; so the images go to the device once,
grouped by size (landscape orientation), and a batch of crops is one gather.
"""
from __future__ import annotations

import torch


class PatchSampler:
    """Random ``size`` x ``size`` crops with random flips and transposes, drawn on ``device``.

    Images are drawn uniformly (each image equally likely), whatever its group.
    """

    def __init__(self, images: list[torch.Tensor], size: int, device: str | torch.device, seed: int = 0):
        groups: dict[tuple[int, ...], list[torch.Tensor]] = {}
        for img in images:
            if img.shape[-2] > img.shape[-1]:
                img = img.transpose(-1, -2)
            if min(img.shape[-2:]) >= size:
                groups.setdefault(tuple(img.shape), []).append(img)
        if not groups:
            raise SystemExit(f"no training image is at least {size} pixels a side")
        self.stacks = [torch.stack(g).to(device) for g in groups.values()]
        counts = torch.tensor([len(g) for g in groups.values()], dtype=torch.float64)
        self.weights = counts / counts.sum()
        self.size, self.device = size, torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, batch: int) -> torch.Tensor:
        """B x C x size x size, values as the images were given."""
        group = torch.multinomial(self.weights, batch, replacement=True, generator=self.generator)
        out = []
        for g, stack in enumerate(self.stacks):
            n = int((group == g).sum())
            if n:
                out.append(self._crops(stack, n))
        x = torch.cat(out)
        return x[torch.randperm(batch, generator=self.generator).to(self.device)]

    def _crops(self, stack: torch.Tensor, n: int) -> torch.Tensor:
        count, channels, h, w = stack.shape
        s, gen = self.size, self.generator
        idx = torch.randint(count, (n,), generator=gen)
        top = torch.randint(h - s + 1, (n,), generator=gen)
        left = torch.randint(w - s + 1, (n,), generator=gen)
        ar = torch.arange(s)
        rows = (top[:, None] + ar)[:, :, None]  # n x s x 1
        cols = (left[:, None] + ar)[:, None, :]  # n x 1 x s
        dev = stack.device
        crops = stack.permute(0, 2, 3, 1)[idx[:, None, None].to(dev), rows.to(dev), cols.to(dev)]  # n s s C
        crops = crops.permute(0, 3, 1, 2)
        flips = torch.rand(n, 3, generator=gen).to(dev) < 0.5
        crops = torch.where(flips[:, 0, None, None, None], crops.flip(-1), crops)
        crops = torch.where(flips[:, 1, None, None, None], crops.flip(-2), crops)
        crops = torch.where(flips[:, 2, None, None, None], crops.transpose(-1, -2), crops)
        return crops.contiguous()
