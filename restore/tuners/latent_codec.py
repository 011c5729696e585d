"""The autoencoder deep OT works in: images to continuous latents and back, on a grid fixed to the image.

The compressive autoencoder of VBLE (``restore/nets/cae.py``) downsamples by
16 with strided convolutions, so its latents change when the image shifts by
anything but a multiple of 16. To let tiles agree with one whole-image call,
every image is padded so that its latent grid sits on multiples of 16 of the
*whole* image's coordinates (a tile passes its origin), with a replicate
margin on every side, so that an image border looks the same to a tile that
ends there as to the whole image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.nets.cae import CaeConfig, CompressiveAutoencoder
from restore.weights import WEIGHTS_DIR, load_model_files

# The higher-rate shipped autoencoder (28.3 dB on CBSD68 crops): its decode must stay close to the input.
DEFAULT_AUTOENCODER = "cae-a0483"
STRIDE = 16  # the analysis transform halves four times
# Replicate padding around every image, a multiple of STRIDE: pixels within this of
# an image border see the same padded context in a tile as in the whole image.
MARGIN = 32
# Pixels of context one latent position sees, and one output pixel sees of the latent,
# through the 5x5 strided convolutions of the encoder and decoder: 2 (1 + 2 + 4 + 8) = 30.
ENCODER_REACH = 30
DECODER_REACH = 30


@dataclass(frozen=True)
class Placement:
    """Where an image sits inside its padded copy: padding before/after along rows and columns."""

    top: int
    bottom: int
    left: int
    right: int
    height: int
    width: int
    stride: int = STRIDE  # pixels per latent cell of the autoencoder that padded it

    def latent_rows(self) -> slice:
        """Latent rows whose stride x stride pixel block overlaps the image."""
        return slice(self.top // self.stride, -(-(self.top + self.height) // self.stride))

    def latent_cols(self) -> slice:
        return slice(self.left // self.stride, -(-(self.left + self.width) // self.stride))


def placement(height: int, width: int, origin: tuple[int, int] = (0, 0), stride: int = STRIDE,
              margin: int = MARGIN) -> Placement:
    """Padding that puts the latent grid on multiples of ``stride`` of the whole image, with at least ``margin`` each side.

    Args:
        height, width: the image (or tile) size.
        origin: (row, col) of its top-left pixel in the whole image.
        stride: pixels per latent cell (16 for our autoencoder, 8 for Stable Diffusion's).
        margin: replicate padding on every side, a multiple of ``stride``.
    """
    top = margin + origin[0] % stride
    left = margin + origin[1] % stride
    bottom = margin + (-(top + height + margin)) % stride
    right = margin + (-(left + width + margin)) % stride
    return Placement(top, bottom, left, right, height, width, stride)


class LatentCodec:
    """A frozen compressive autoencoder used as encoder/decoder of 1- or 3-channel images in [0, 1].

    Gray images go through as three equal channels and come back as their mean.
    ``restore.tuners.kl_codec.AutoencoderKLCodec`` offers the same interface
    for a local diffusers ``AutoencoderKL`` folder; ``restore.tuners.codecs.open_codec``
    picks one from a name or a folder.

    Args:
        name: shipped autoencoder weights (``weights/<name>.safetensors``).
        device: where the networks run.
        folder: the weights folder.
    """

    def __init__(self, name: str = DEFAULT_AUTOENCODER, device: str | torch.device = "cpu",
                 folder: Path | None = None) -> None:
        self.name = name
        self.device = torch.device(device)
        state, doc = load_model_files(name, folder or WEIGHTS_DIR)
        if "g_a.0.weight" not in state:
            raise RestoreError(f"weights '{name}' are not a compressive autoencoder")
        net = CompressiveAutoencoder(CaeConfig(**doc["config"]))
        net.load_state_dict(state)
        self.net = net.requires_grad_(False).eval().to(self.device)
        self.latent_channels = net.cfg.m

    # What deep OT asks of any codec: its grid, its reach, and what identifies its weights in a tuner file.
    kind = "cae"
    stride = STRIDE
    encoder_reach = ENCODER_REACH
    decoder_reach = DECODER_REACH
    digest = ""  # shipped weights are verified by their manifest's sha256 instead

    def to(self, device: str | torch.device) -> "LatentCodec":
        self.device = torch.device(device)
        self.net.to(self.device)
        return self

    def encode(self, x: torch.Tensor, origin: tuple[int, int] = (0, 0)) -> tuple[torch.Tensor, Placement]:
        """The continuous latent (before quantisation) of a 1 x C x H x W image, and how it was padded.

        Values are clipped to [0, 1] first, the range the autoencoder was trained
        on (restorers may overshoot it a little).
        """
        check_channels(x.shape[1])
        where = placement(x.shape[-2], x.shape[-1], origin)
        padded = F.pad(x.to(self.device, torch.float32).clamp(0, 1), [where.left, where.right, where.top, where.bottom],
                       mode="replicate")
        with torch.inference_mode():
            z = self.net.g_a(padded.expand(-1, 3, -1, -1))
        return z, where

    def decode(self, z: torch.Tensor, where: Placement, channels: int) -> torch.Tensor:
        """The image of latent ``z`` cropped back to the unpadded 1 x ``channels`` x H x W."""
        with torch.inference_mode():
            x = self.net.decode(z)
        x = x[..., where.top : where.top + where.height, where.left : where.left + where.width]
        return x.mean(dim=1, keepdim=True) if channels == 1 else x


def check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise RestoreError(f"deep OT's autoencoder takes gray or RGB images (1 or 3 channels), got {channels} channels")
