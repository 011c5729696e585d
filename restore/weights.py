"""Find, verify and load the shipped weights.

Every model is a pair ``weights/<name>.safetensors`` + ``weights/<name>.json``
(architecture config and training facts), listed with its sha256 in
``weights/manifest.json``. Nothing is ever downloaded: a missing or altered
file is a clear error that names it.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from restore.errors import RestoreError

MANIFEST = "manifest.json"


def _weights_dir() -> Path:
    """RESTORE_WEIGHTS if set; else weights/ beside restore/ (source tree, editable
    install); else the copy a wheel installs under <prefix>/share/restore/weights."""
    if "RESTORE_WEIGHTS" in os.environ:
        return Path(os.environ["RESTORE_WEIGHTS"])
    source = Path(__file__).resolve().parents[1] / "weights"
    if (source / MANIFEST).is_file():
        return source
    return Path(sys.prefix) / "share" / "restore" / "weights"


WEIGHTS_DIR = _weights_dir()


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: Path | None = None) -> dict:
    """The manifest: {"files": {filename: {"sha256": ..., "bytes": ...}}, "models": {...}}."""
    path = (folder or WEIGHTS_DIR) / MANIFEST
    if not path.is_file():
        raise RestoreError(f"weights manifest not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RestoreError(f"weights manifest {path} is not valid JSON: {e}") from None


def verified_path(filename: str, folder: Path | None = None) -> Path:
    """Path of a shipped file after checking it exists and matches its manifest sha256."""
    folder = folder or WEIGHTS_DIR
    entry = read_manifest(folder).get("files", {}).get(filename)
    if entry is None:
        raise RestoreError(f"weights file '{filename}' is not listed in {folder / MANIFEST}")
    path = folder / filename
    if not path.is_file():
        raise RestoreError(f"weights file missing: {path} (reinstall the package or restore the file)")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise RestoreError(
            f"weights file corrupt: {path} has sha256 {digest[:12]}..., manifest expects {entry['sha256'][:12]}..."
        )
    return path


def load_model_files(name: str, folder: Path | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """State dict (float32) and JSON config of shipped model ``name``, both verified."""
    tensors = load_file(str(verified_path(f"{name}.safetensors", folder)))
    config_path = verified_path(f"{name}.json", folder)
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as e:
        raise RestoreError(f"weights config {config_path} is not valid JSON: {e}") from None
    return {k: v.float() for k, v in tensors.items()}, config


def shipped(restorer: str, folder: Path | None = None, **selector: object) -> dict[str, dict]:
    """{weights name: manifest card} of ``restorer``'s shipped weights whose cards match ``selector``.

    The one lookup every restorer uses: e.g. ``shipped("rddm", task="sr", scale=4)``,
    ``shipped("lidia", color="gray")``; a card without a selector key never matches it.
    """
    models = read_manifest(folder).get("models", {})
    return {name: card for name, card in models.items() if card.get("restorer") == restorer
            and all(card.get(key, _MISSING) == value for key, value in selector.items())}


_MISSING = object()


def load_net(name: str, build: Callable[[dict], torch.nn.Module], folder: Path | None = None,
             device: str | torch.device = "cpu", *, frozen: bool = True, channels_last: bool = False) -> torch.nn.Module:
    """Shipped weights ``name`` (verified) in the net ``build(config)`` makes, in eval mode on ``device``.

    Args:
        build: the architecture from the weights' JSON config.
        frozen: no gradients (inference); False for nets that are adapted or trained further.
        channels_last: oneDNN's and cuDNN's convolutions run about 20-25% faster on it
            (benchmarks/results/diffusion_speed.md).
    """
    state, doc = load_model_files(name, folder)
    net = build(doc["config"])
    net.load_state_dict(state)
    net = net.requires_grad_(not frozen)
    net = net.to(device, memory_format=torch.channels_last) if channels_last else net.to(device)
    return net.eval()


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """State dict from an arbitrary .safetensors file (training warm starts, user weights)."""
    if not path.is_file():
        raise RestoreError(f"weights file not found: {path}")
    try:
        return {k: v.float() for k, v in load_file(str(path)).items()}
    except Exception as e:  # safetensors raises its own error types
        raise RestoreError(f"cannot read weights {path}: {e}") from None


def save_model(model: torch.nn.Module, config: dict, stem: Path, meta: dict | None = None) -> None:
    """Write ``stem.safetensors`` + ``stem.json`` atomically (training side)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = stem.with_suffix(".safetensors.tmp")
    save_file(state, str(tmp), metadata={k: str(v) for k, v in (meta or {}).items()})
    os.replace(tmp, stem.with_suffix(".safetensors"))
    doc = {"config": config, "training": meta or {}}
    tmp = stem.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, stem.with_suffix(".json"))


def update_manifest(folder: Path | None = None) -> dict:
    """Recompute the manifest over every .safetensors/.json pair in ``folder`` (release step)."""
    folder = folder or WEIGHTS_DIR
    path = folder / MANIFEST
    old = json.loads(path.read_text()) if path.is_file() else {}
    files = {}
    for f in sorted(folder.iterdir()):
        if f.suffix in (".safetensors", ".json") and f.name != MANIFEST:
            files[f.name] = {"sha256": sha256(f), "bytes": f.stat().st_size}
    doc = {"files": files, "models": old.get("models", {})}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return doc
