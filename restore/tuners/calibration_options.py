"""The declared options of a deep-OT calibration: latent patch side, local mean, and which autoencoder's latent."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from restore.errors import RestoreError
from restore.options import build_options, option
from restore.tuners.latent_codec import DEFAULT_AUTOENCODER
from restore.tuners.latent_stats import DEFAULT_LOCAL_MEAN, DEFAULT_PATCH

OWNER = "dot"  # how the checks name the tuner (``option 'patch' of model 'dot' ...``)


@dataclass(frozen=True)
class CalibrationOptions:
    """How ``DeepOT.calibrate`` / ``DeepOT.from_restored`` build the latent statistics."""

    patch: int = option(DEFAULT_PATCH, "latent patch side p (D = latent channels x p^2)", low=1, high=5)
    local_mean: int = option(DEFAULT_LOCAL_MEAN, "latent cells of the local mean kept out of the map, odd; "
                             "0: the paper's raw latent", low=0)
    autoencoder: str = option(DEFAULT_AUTOENCODER, "a shipped autoencoder (cae-a0483, cae-a0067) or a local diffusers "
                              "AutoencoderKL folder, never downloaded")

    def __post_init__(self) -> None:
        if self.local_mean % 2 == 0 and self.local_mean:
            raise RestoreError(f"option 'local_mean' of model '{OWNER}' must be 0 or odd (cells centred on a position), "
                               f"got {self.local_mean}")


def calibration_options(patch: int = DEFAULT_PATCH, local_mean: int = DEFAULT_LOCAL_MEAN,
                        autoencoder: str | Path = DEFAULT_AUTOENCODER) -> CalibrationOptions:
    """The checked options (a folder given as a ``Path`` is kept as its text)."""
    folder = str(autoencoder) if isinstance(autoencoder, Path) else autoencoder
    return build_options(CalibrationOptions, {"patch": patch, "local_mean": local_mean, "autoencoder": folder}, OWNER)
