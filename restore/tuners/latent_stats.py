"""Gaussian statistics of the latent patches of a set of images, and the latent W2 distance between two sets.

The squared Gelbrich distance between the latent patch statistics of a set of
restored images and of a set of clean images measures how far the outputs are
from looking natural, with no pretrained classifier (Adrai et al. 2023).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import torch

from restore.errors import RestoreError
from restore.tuners.codecs import open_codec
from restore.tuners.gaussian_ot import GaussianStats, StatsAccumulator, gelbrich_distance
from restore.tuners.latent_codec import DEFAULT_AUTOENCODER, LatentCodec
from restore.tuners.latent_patches import split_local_mean, unfold_patches

# p = 1: one latent cell already spans 16 x 16 pixels (the paper's 3 x 3 patches of an 8x VAE span 24),
# and D = 96 sits in the paper's range (36 to 100). With 3 x 3 cells, D = 864: 16 images of 256 x 256 give
# 4.7 samples per dimension, the map's gains reached 191 and held-out W2 rose again from alpha 0.5 to 1
# (models/deep-ot/README.md).
DEFAULT_PATCH = 1
# Latent cells the local mean is taken over before the statistics (0: the paper's raw latent, see split_local_mean).
DEFAULT_LOCAL_MEAN = 5
# Samples per dimension a covariance needs to be estimated stably enough for its matrix square roots.
SAMPLES_PER_DIM = 8


def as_image_list(images: torch.Tensor | Sequence[torch.Tensor], what: str) -> list[torch.Tensor]:
    """1 x C x H x W images from a B x C x H x W tensor or a sequence of C x H x W / 1 x C x H x W tensors."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise RestoreError(f"{what} must be a B x C x H x W tensor or a list of images, got shape {tuple(images.shape)}")
        items = list(images.split(1))
    else:
        items = [x if isinstance(x, torch.Tensor) and x.ndim == 4 else _batched(x, what) for x in images]
    if not items:
        raise RestoreError(f"{what}: no images given")
    channels = {x.shape[1] for x in items}
    if len(channels) > 1:
        raise RestoreError(f"{what} mix images of {' and '.join(map(str, sorted(channels)))} channels; give one kind")
    for x in items:
        if x.shape[0] != 1 or not x.is_floating_point():
            raise RestoreError(f"{what}: expected float images 1 x C x H x W in [0, 1], got {x.dtype} {tuple(x.shape)}")
    return items


def _batched(x: object, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise RestoreError(f"{what}: expected C x H x W or 1 x C x H x W tensors, got {got}")
    return x[None]


def image_latent_patches(codec: LatentCodec, x: torch.Tensor, patch: int, local_mean: int = 0) -> torch.Tensor:
    """N x (C p p) latent patch vectors of one 1 x C x H x W image: one per latent position over the image.

    With ``local_mean`` > 0, patches of the latent's detail (its mean over that
    many cells around each position taken off, see ``split_local_mean``).
    """
    z, where = codec.encode(x)
    detail, _ = split_local_mean(z, local_mean)
    patches = unfold_patches(detail, patch)[0]
    rows = torch.arange(z.shape[-2])[where.latent_rows()]
    cols = torch.arange(z.shape[-1])[where.latent_cols()]
    keep = (rows[:, None] * z.shape[-1] + cols[None, :]).flatten()
    return patches[keep.to(patches.device)]


def latent_patch_stats(codec: LatentCodec, images: Iterable[torch.Tensor], patch: int = DEFAULT_PATCH,
                       local_mean: int = 0) -> GaussianStats:
    """Mean and covariance (float64) of every latent patch of every image (1 x C x H x W each)."""
    acc = StatsAccumulator(codec.latent_channels * patch * patch)
    for x in images:
        acc.add(image_latent_patches(codec, x, patch, local_mean))
    return acc.stats()


def halves_w2(codec: LatentCodec, images: Sequence[torch.Tensor], patch: int, local_mean: int) -> float | None:
    """W2 between the statistics of the even- and the odd-numbered images: how much a set's scenes alone move them.

    Two independent sets of n scenes differ by about half of what two halves
    of one set do. None when a half has too few patches for a covariance.
    """
    halves = (images[0::2], images[1::2])
    dim = codec.latent_channels * patch * patch
    if min(len(h) for h in halves) == 0:
        return None
    stats = [latent_patch_stats(codec, h, patch, local_mean) for h in halves]
    if min(st.count for st in stats) < samples_needed(dim):
        return None
    return gelbrich_distance(*stats)


def samples_needed(dim: int) -> int:
    return SAMPLES_PER_DIM * dim


def check_enough_samples(count: int, dim: int, what: str, per_image: float) -> None:
    """Refuse ``count`` latent patches when a stable ``dim`` x ``dim`` covariance needs more, saying how many images would do."""
    needed = samples_needed(dim)
    if count < needed:
        images = math.ceil(needed / max(per_image, 1.0))
        raise RestoreError(
            f"too few {what} for a stable {dim}x{dim} covariance: {count} latent patches, need at least {needed} "
            f"(about {images} images of this size, or a smaller patch)"
        )


def latent_w2(images_a: torch.Tensor | Sequence[torch.Tensor], images_b: torch.Tensor | Sequence[torch.Tensor], *,
              patch: int = 1, autoencoder: str | Path = DEFAULT_AUTOENCODER,
              codec: LatentCodec | None = None) -> float:
    """Squared Gelbrich (Gaussian W2) distance between the latent patch statistics of two image sets.

    The raw latent (no local mean taken off), as in the paper.

    Args:
        images_a, images_b: B x C x H x W tensors or lists of images in [0, 1] (1 or 3 channels).
        patch: latent patch side p (D = 96 p p; p = 1 keeps a dozen 256 x 256 images at 32 samples per dimension).
        autoencoder: a shipped autoencoder or a local AutoencoderKL folder (ignored when ``codec`` is given).
        codec: an already loaded :class:`LatentCodec`.
    """
    codec = codec or open_codec(autoencoder)
    a = latent_patch_stats(codec, as_image_list(images_a, "images_a"), patch)
    b = latent_patch_stats(codec, as_image_list(images_b, "images_b"), patch)
    return gelbrich_distance(a, b)
