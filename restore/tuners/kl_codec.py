"""A local diffusers ``AutoencoderKL`` folder as deep OT's latent space: the autoencoder the paper uses.

Adrai et al. transport the latent of Stable Diffusion's KL autoencoder (4
channels, 8x downsampling). How its latent is used here:

- The latent of an image is the posterior *mean* of the encoder's diagonal
  Gaussian, never a sample: the map, its statistics and every tile must see
  the same latent for the same pixels (deterministic, seed-free).
- It is taken in the units the latent diffusion models use,
  ``(mean - shift_factor) * scaling_factor`` (0.18215 and no shift for SD 1.x/2.x),
  about unit variance. The Gaussian map is the same in any units (it is affine-
  equivariant); the scale only keeps the covariance's PSD fix (1e-7 to 1e-5 on
  the diagonal) and the latent W2 numbers on the scale the paper reports.
- Images go in as ``2 x - 1`` (the autoencoder's [-1, 1]) from our [0, 1] and
  come back as ``(y + 1) / 2``; gray images go through as three equal channels.
- The image is replicate-padded so that its latent grid sits on multiples of
  the downsampling factor (``2 ** (len(block_out_channels) - 1)``, 8 for SD) of
  the whole image, as for our own autoencoder (``latent_codec.placement``).

The folder is read with ``from_pretrained(folder, local_files_only=True,
use_safetensors=True)``: nothing is downloaded and no pickle is unpickled.
A hub id, a missing folder or a folder holding another model is refused with one line.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.tuners.latent_codec import Placement, check_channels, placement

KIND = "autoencoder-kl"
CLASS_NAME = "AutoencoderKL"


def find_model_folder(folder: str | Path) -> Path:
    """The folder holding the AutoencoderKL's ``config.json``: ``folder`` itself, or its ``vae/`` for a whole pipeline."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise RestoreError(f"autoencoder folder not found: {folder} (a diffusers AutoencoderKL must be a local folder "
                           "written by save_pretrained; restore downloads nothing, so hub ids are refused)")
    if not (path / "config.json").is_file() and (path / "vae" / "config.json").is_file():
        path = path / "vae"  # a Stable Diffusion pipeline folder: its autoencoder is the vae/ component
    config = _read_config(path)
    if config.get("_class_name") != CLASS_NAME:
        raise RestoreError(f"{path} is not a diffusers AutoencoderKL folder (its config.json names "
                           f"{config.get('_class_name')!r}, expected '{CLASS_NAME}')")
    if not _weights_files(path):
        raise RestoreError(f"{path} holds no .safetensors weights (restore reads AutoencoderKL weights only from "
                           "safetensors, never from pickled .bin files)")
    return path.resolve()


def folder_digest(path: Path) -> str:
    """sha256 of the folder's config and weights: a tuner file names the exact autoencoder it was calibrated in."""
    digest = hashlib.sha256()
    for file in [path / "config.json", *_weights_files(path)]:
        digest.update(file.name.encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class AutoencoderKLCodec:
    """A frozen diffusers ``AutoencoderKL`` with :class:`restore.tuners.latent_codec.LatentCodec`'s interface.

    Args:
        folder: a local folder written by ``AutoencoderKL.save_pretrained`` (or a pipeline folder with ``vae/``).
        device: where the networks run.
        digest: if given, the :func:`folder_digest` the folder must have (a tuner file's record).

    Example:
        >>> codec = AutoencoderKLCodec("sd-vae-ft-mse")  # doctest: +SKIP
        >>> z, where = codec.encode(x); x_back = codec.decode(z, where, x.shape[1])  # doctest: +SKIP
    """

    kind = KIND

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu", digest: str | None = None) -> None:
        path = find_model_folder(folder)
        self.name = str(path)
        self.digest = folder_digest(path)
        if digest and digest != self.digest:
            raise RestoreError(f"autoencoder folder {path} holds other weights than the tuner was calibrated with "
                               f"(sha256 {self.digest[:12]}..., expected {digest[:12]}...)")
        self.net = _load(path)
        cfg = self.net.config
        if cfg.in_channels != 3 or cfg.out_channels != 3:
            raise RestoreError(f"{path}: deep OT needs an RGB AutoencoderKL (3 channels in and out), "
                               f"got {cfg.in_channels} in, {cfg.out_channels} out")
        self.device = torch.device(device)
        self.net = self.net.requires_grad_(False).eval().to(self.device)
        self.latent_channels = int(cfg.latent_channels)
        self.scaling_factor = float(cfg.scaling_factor)
        self.shift_factor = float(cfg.shift_factor or 0.0)
        levels = len(cfg.block_out_channels)
        self.stride = 2 ** (levels - 1)
        self.encoder_reach, self.decoder_reach = convolution_reach(levels, int(cfg.layers_per_block))
        # Two latent cells of replicate context beyond every border, as for our autoencoder.
        self.margin = 2 * self.stride
        # SD's autoencoder overflows in fp16 (NaN or black images); its config asks for fp32 (force_upcast),
        # which then holds under a pipeline's fp16/bf16 autocast too.
        self.force_upcast = bool(getattr(cfg, "force_upcast", True))

    def to(self, device: str | torch.device) -> "AutoencoderKLCodec":
        self.device = torch.device(device)
        self.net.to(self.device)
        return self

    def encode(self, x: torch.Tensor, origin: tuple[int, int] = (0, 0)) -> tuple[torch.Tensor, Placement]:
        """The scaled posterior mean of a 1 x C x H x W image in [0, 1] (clipped first), and how it was padded."""
        check_channels(x.shape[1])
        where = placement(x.shape[-2], x.shape[-1], origin, stride=self.stride, margin=self.margin)
        padded = F.pad(x.to(self.device, torch.float32).clamp(0, 1), [where.left, where.right, where.top, where.bottom],
                       mode="replicate")
        with torch.inference_mode(), self._precision():
            posterior = self.net.encode(padded.expand(-1, 3, -1, -1) * 2 - 1).latent_dist
            z = (posterior.mean - self.shift_factor) * self.scaling_factor
        return z, where

    def decode(self, z: torch.Tensor, where: Placement, channels: int) -> torch.Tensor:
        """The [0, 1] image of scaled latent ``z``, cropped back to the unpadded 1 x ``channels`` x H x W (not clipped)."""
        with torch.inference_mode(), self._precision():
            y = self.net.decode(z.float() / self.scaling_factor + self.shift_factor).sample
        x = (y[..., where.top : where.top + where.height, where.left : where.left + where.width] + 1) / 2
        return x.mean(dim=1, keepdim=True) if channels == 1 else x


    def _precision(self) -> contextlib.AbstractContextManager:
        """Autocast off where the config asks for fp32; else whatever the caller runs under."""
        return torch.autocast(self.device.type, enabled=False) if self.force_upcast else contextlib.nullcontext()


def convolution_reach(levels: int, layers_per_block: int) -> tuple[int, int]:
    """Pixels of context the encoder's and the decoder's 3 x 3 convolutions give one position (an upper bound).

    Encoder: conv_in, per level ``layers_per_block`` ResNet blocks of two convolutions,
    a stride-2 convolution between levels, two mid-block ResNets and conv_out; the
    decoder mirrors it with ``layers_per_block + 1`` ResNets per level. A convolution
    at a level of s pixels per cell reaches s pixels (a strided one 2 s). GroupNorm
    and the mid-block attention see the whole tile, beyond any such reach.
    """
    top = 2 ** (levels - 1)
    encoder = 1 + sum(2 * layers_per_block * 2**i + (2 * 2**i if i < levels - 1 else 0) for i in range(levels))
    encoder += 4 * top + top
    decoder = top + 4 * top + sum(2 * (layers_per_block + 1) * 2**i + (2**i if i else 0) for i in range(levels)) + 1
    return encoder, decoder


def _read_config(path: Path) -> dict:
    config = path / "config.json"
    if not config.is_file():
        raise RestoreError(f"{path} is not a diffusers model folder (no config.json; write one with save_pretrained)")
    try:
        doc = json.loads(config.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RestoreError(f"{config} is not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, dict):
        raise RestoreError(f"{config} is not a diffusers model config (a JSON object)")
    return doc


def _weights_files(path: Path) -> list[Path]:
    """The safetensors files ``from_pretrained`` reads: not variants (``*.fp16.safetensors``), which it leaves alone."""
    return sorted(p for p in path.glob("*.safetensors") if "." not in p.name[: -len(".safetensors")])


def _load(path: Path) -> torch.nn.Module:
    from diffusers import AutoencoderKL  # imported here: diffusers takes a second to import

    try:
        # float32 and no low-memory loading: what the latent statistics are computed in, with no warning
        # about a missing `accelerate` on every load.
        return AutoencoderKL.from_pretrained(str(path), local_files_only=True, use_safetensors=True,
                                             torch_dtype=torch.float32, low_cpu_mem_usage=False)
    except Exception as exc:  # diffusers raises OSError, ValueError, safetensors errors... for a broken folder
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RestoreError(f"{path}: cannot load it as a diffusers AutoencoderKL ({message})") from None
