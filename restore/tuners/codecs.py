"""Which autoencoder deep OT works in: one of ours by name, or a local diffusers AutoencoderKL folder by path."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch
from safetensors import safe_open

from restore.errors import RestoreError
from restore.tuners.kl_codec import AutoencoderKLCodec
from restore.tuners.latent_codec import LatentCodec
from restore.weights import WEIGHTS_DIR

Codec = Union[LatentCodec, AutoencoderKLCodec]


def open_codec(autoencoder: str | Path, device: str | torch.device = "cpu", digest: str | None = None) -> Codec:
    """The codec ``autoencoder`` names: an existing folder is an AutoencoderKL, a bare name a shipped autoencoder.

    Args:
        autoencoder: a shipped compressive autoencoder (``cae-a0483``) or a local AutoencoderKL folder.
        device: where the networks run.
        digest: for a folder, the sha256 a tuner file recorded for it (refused if the folder now holds other weights).

    Raises:
        RestoreError: a name that is neither, e.g. a hub id (nothing is downloaded).
    """
    text = str(autoencoder)
    if Path(text).expanduser().is_dir():
        return AutoencoderKLCodec(text, device=device, digest=digest)
    if Path(text).expanduser().is_file():
        raise RestoreError(f"autoencoder {text} is a file; give the AutoencoderKL folder that holds it and its config.json")
    if digest:  # a tuner file's AutoencoderKL folder, since moved or deleted
        raise RestoreError(f"the AutoencoderKL folder this tuner was calibrated in is gone: {text} (put it back, "
                           "pass its new place as DeepOT.load(..., autoencoder=FOLDER), or calibrate again)")
    if isinstance(autoencoder, str) and "/" not in text and "\\" not in text and shipped_autoencoder(text):
        return LatentCodec(text, device=device)
    raise RestoreError(f"autoencoder '{text}' is neither a shipped autoencoder ({', '.join(shipped_autoencoders())}) "
                       "nor a local diffusers AutoencoderKL folder (restore downloads nothing: hub ids are refused)")


def shipped_autoencoder(name: str) -> bool:
    return (WEIGHTS_DIR / f"{name}.safetensors").is_file()  # LatentCodec refuses weights of another net


def shipped_autoencoders() -> list[str]:
    """Shipped weights holding an analysis transform (``g_a``): not VBLE-xz's variance decoders."""
    names = []
    for path in sorted(WEIGHTS_DIR.glob("cae-*.safetensors")):
        with safe_open(str(path), framework="pt") as f:  # reads the header only
            if "g_a.0.weight" in f.keys():
                names.append(path.stem)
    return names
