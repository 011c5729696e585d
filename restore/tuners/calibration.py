"""What a deep-OT calibration holds, and its file: safetensors tensors with JSON metadata, never pickle.

A ``.dot`` file is one safetensors file: the float64 means and covariances of
the restorer's output patches (source) and of natural-image patches (target),
and in its header, under ``restore.deep_ot``, a JSON document naming the
model, task, operator, patch size, autoencoder, sample counts and versions.
The map itself is recomputed on load (a second of eigendecompositions).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as serialise

from restore.errors import RestoreError
from restore.io import atomic_write
from restore.operators.base import Operator
from restore.tuners.gaussian_ot import GaussianStats

FORMAT = "restore.deep_ot"
FORMAT_VERSION = 1
TENSORS = ("source_mean", "source_cov", "target_mean", "target_cov")


def describe_operator(operator: Operator) -> dict:
    """The operator facts a calibration depends on: task, class, noise sigma (0-255), scale."""
    return {"task": operator.task, "kind": type(operator).__name__, "sigma_255": round(float(operator.sigma) * 255, 4),
            "scale": float(operator.scale)}


@dataclass
class Calibration:
    """Latent patch statistics of one restorer's outputs (source) and of natural images (target).

    Attributes:
        source, target: float64 Gaussian statistics of D = C p p patch vectors.
        model: registry name of the restorer the source statistics come from.
        operator: :func:`describe_operator` of the degradation it inverted.
        patch: latent patch side p.
        autoencoder: the autoencoder whose latent the patches are in: a shipped name, or the
            absolute path of a diffusers AutoencoderKL folder.
        autoencoder_digest: that folder's sha256 (``kl_codec.folder_digest``); empty for a shipped one.
        channels: image channels calibrated on (1 or 3).
        local_mean: latent cells of the local mean taken off before the statistics (0: none, the paper's way).
        counts: images and latent patches behind each side.
        diagnostics: W2 between the two sides, and between two halves of the natural set (see ``scene_noise_note``).
        versions: restore and torch versions that made it.
    """

    source: GaussianStats
    target: GaussianStats
    model: str
    operator: dict
    patch: int
    autoencoder: str
    channels: int
    local_mean: int = 0
    autoencoder_digest: str = ""
    counts: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.operator["task"]

    def metadata(self) -> dict:
        doc = {k: v for k, v in asdict(self).items() if k not in ("source", "target")}
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **doc}

    def scene_noise_note(self) -> str | None:
        """A caution when the restorer moves the statistics less than the choice of scenes does, else None.

        Two unrelated sets of n scenes differ by about half the W2 between two
        halves of one set; a restorer-to-natural W2 below that whole halves W2
        means the map is mostly scene differences, unless the natural images are
        the clean originals of the degraded ones (then scenes cancel out).
        """
        gap, halves = self.diagnostics.get("restored_to_natural_w2"), self.diagnostics.get("natural_halves_w2")
        if gap is None or halves is None or gap >= halves:
            return None
        return (f"the restorer's outputs differ from the natural images (latent W2 {gap:.3g}) less than two halves of the "
                f"natural set differ ({halves:.3g}): unless the natural images are the degraded images' own originals, the "
                "map mostly carries scene differences; calibrate on more images")

    def check_matches(self, model: str, task: str) -> None:
        """Refuse to tune a restorer or task this calibration was not made for."""
        if model != self.model or task != self.task:
            raise RestoreError(
                f"this tuner was calibrated for model '{self.model}', task '{self.task}'; "
                f"it cannot tune model '{model}', task '{task}' (calibrate one with `restore tune`)"
            )


def save_calibration(calibration: Calibration, path: str | Path) -> Path:
    """Write the calibration to ``path`` atomically (temp file beside it, then rename)."""
    path = Path(path)
    tensors = {
        "source_mean": calibration.source.mean, "source_cov": calibration.source.cov,
        "target_mean": calibration.target.mean, "target_cov": calibration.target.cov,
    }
    tensors = {k: v.detach().to("cpu", torch.float64).contiguous() for k, v in tensors.items()}
    header = {FORMAT: json.dumps(calibration.metadata())}
    # Serialised in memory and written by us: the file gets the usual permissions (umask), not 0600.
    atomic_write(path, lambda fh: fh.write(serialise(tensors, metadata=header)), what="the tuner file")
    return path


def load_calibration(path: str | Path) -> Calibration:
    """Read a tuner file written by :func:`save_calibration`, checking that it is whole and consistent."""
    path = Path(path)
    if not path.is_file():
        raise RestoreError(f"tuner file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise RestoreError(f"{path} is not a readable tuner file (corrupt or not safetensors: {exc})") from None
    if FORMAT not in header:
        raise RestoreError(f"{path} is a safetensors file but not a deep-OT tuner file (no '{FORMAT}' metadata)")
    try:
        doc = json.loads(header[FORMAT])
        return _calibration_from(doc, tensors)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise RestoreError(f"{path}: corrupt tuner file ({type(exc).__name__}: {exc})") from None


def _calibration_from(doc: dict, tensors: dict[str, torch.Tensor]) -> Calibration:
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"format version {doc.get('format_version')} (this restore reads {FORMAT_VERSION})")
    missing = [name for name in TENSORS if name not in tensors]
    if missing:
        raise KeyError(f"missing tensors {', '.join(missing)}")
    counts = doc.get("counts", {})
    source = _stats(tensors["source_mean"], tensors["source_cov"], int(counts["source_patches"]))
    target = _stats(tensors["target_mean"], tensors["target_cov"], int(counts["target_patches"]))
    if source.dim != target.dim:
        raise ValueError(f"source and target dimensions differ ({source.dim} vs {target.dim})")
    return Calibration(source=source, target=target, model=str(doc["model"]), operator=dict(doc["operator"]),
                       patch=int(doc["patch"]), autoencoder=str(doc["autoencoder"]), channels=int(doc["channels"]),
                       local_mean=int(doc["local_mean"]), autoencoder_digest=str(doc.get("autoencoder_digest", "")),
                       counts=counts, versions=dict(doc.get("versions", {})),
                       diagnostics=dict(doc.get("diagnostics", {})))


def _stats(mean: torch.Tensor, cov: torch.Tensor, count: int) -> GaussianStats:
    mean, cov = mean.to(torch.float64), cov.to(torch.float64)
    if mean.ndim != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(f"statistics of shapes {tuple(mean.shape)} and {tuple(cov.shape)} do not fit together")
    if not (torch.isfinite(mean).all() and torch.isfinite(cov).all()):
        raise ValueError("statistics hold NaN or inf values")
    return GaussianStats(mean=mean, cov=cov, count=count)
