"""The LIDIA authors' published checkpoints, read safely and converted exactly to ``restore.nets.lidia``.

The authors (github grishavak/LIDIA-denoiser) save ``{"state_dict": ...}`` of
their patch-denoising network with ``torch.save``, one file per noise level:
``model_state_sigma_25_bw.pt`` (full network, gray), ``model_state_small_sigma_25_bw.pt``
(LIDIA-S), ``model_state_sigma_25_c.pt`` (colour), ``model_state_sigma_blind_bw.pt``
(blind, sigma 15-30). Their layers are our layers with other names and
transposed shapes: a ``VerHorMat`` (``ver``: Linear over the patch values,
``hor``: Linear over the neighbours, ``b``: hor_out x ver_out bias) is our
``Separable`` (``pix`` = ver.weight^T, ``nb`` = hor.weight, ``bias`` = b with a
middle axis); their ``FcNet`` is our neighbour-weight MLP. The file is read with
``torch.load(weights_only=True)``: a file that needs more than tensors and
containers to unpickle is refused, never executed.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from restore.errors import RestoreError
from restore.nets.lidia import Lidia, LidiaConfig
from restore.weights import MANIFEST, save_model, sha256, update_manifest

# The noise levels of the authors' blind gray model (it takes no noise rescaling inside them).
BLIND_RANGE = (15.0, 30.0)
# Their file names carry the noise level: model_state_sigma_25_bw.pt, model_state_small_sigma_blind_bw.pt.
SIGMA_IN_NAME = re.compile(r"sigma_(\d+(?:\.\d+)?|blind)", re.IGNORECASE)
# The fixed scale-1 smoothing kernel their Aggregation1 keeps as a (frozen) parameter; ours is built in.
FIXED_KERNEL_KEY = "separable_fc_net.agg1.bilinear_conv.weight"
FIRST_LAYER_KEY = "separable_fc_net.sep_part1_s0.ver_hor_bn_re0.ver_hor.ver.weight"
BN_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@dataclass
class Converted:
    """An authors' checkpoint as our network: its config, state dict and what it was trained for."""

    config: LidiaConfig
    state: dict[str, torch.Tensor]
    sigma: float  # 0-255; the blind model's: the geometric middle of its range
    sigma_range: tuple[float, float] | None  # the blind model's noise levels, else None
    source: Path

    @property
    def color(self) -> str:
        return "gray" if self.config.channels == 1 else "color"

    @property
    def name(self) -> str:
        """Weights name in a converted folder, e.g. ``lidia-full-gray-s25``, ``lidia-small-gray-blind``."""
        level = "blind" if self.sigma_range else f"s{self.sigma:g}"
        return f"lidia-{'small' if self.config.light else 'full'}-{self.color}-{level}"

    def card(self) -> dict:
        """Its manifest card: the keys the LIDIA restorer selects on, and where it came from."""
        variant = "LIDIA-S" if self.config.light else "LIDIA"
        level = f"blind sigma {BLIND_RANGE[0]:g}-{BLIND_RANGE[1]:g}" if self.sigma_range else f"sigma {self.sigma:g}"
        card = {"restorer": "lidia", "color": self.color, "sigma": self.sigma,
                "summary": f"{variant} {self.color}, {level} (the authors' checkpoint, converted)",
                "source": self.source.name}
        if self.sigma_range:
            card["sigma_range"] = list(self.sigma_range)
        return card

    def build(self) -> Lidia:
        """Our network with these weights (eval mode, trainable: adaptation may change a copy)."""
        net = Lidia(self.config)
        net.load_state_dict(self.state)
        return net.eval()


def read_checkpoint(path: Path, sigma_255: float | None = None) -> Converted:
    """The authors' checkpoint at ``path`` as our network's weights.

    Args:
        sigma_255: the noise level (0-255 units) it was trained for, when its file name does not say
            (the authors' names do: ``..._sigma_25_...``, ``..._sigma_blind_...``).

    Raises:
        RestoreError: an unreadable or unsafe file, a dict not in the authors' layout
            (naming the missing, unexpected or misshapen keys), or an unknown noise level.
    """
    path = Path(path)
    state = _authors_state(_load_safely(path), path)
    config = infer_config(state, path)
    level, sigma_range = _noise_level(path, sigma_255)
    return Converted(config, to_ours(state, config, path), level, sigma_range, path)


def convert_checkpoint(path: Path, out_dir: Path, sigma_255: float | None = None, overwrite: bool = False) -> Path:
    """Write the authors' checkpoint as our weights folder: ``NAME.safetensors`` + ``NAME.json`` + manifest entry.

    The folder then loads as ``restore.load("lidia", weights=out_dir)`` (or ``--weights DIR``)
    with no pickle; several checkpoints converted into one folder are picked by
    noise level and colour mode, as the shipped weights are. Returns the safetensors path.

    Raises:
        RestoreError: as ``read_checkpoint``; or the weights exist already and not ``overwrite``.
    """
    converted = read_checkpoint(path, sigma_255)
    out_dir = Path(out_dir)
    stem = out_dir / converted.name
    target = stem.with_suffix(".safetensors")
    if target.exists() and not overwrite:
        raise RestoreError(f"{target} exists; pass overwrite=True to replace it")
    if out_dir.exists() and not out_dir.is_dir():
        raise RestoreError(f"output {out_dir} is a file, not a folder")
    _check_no_rival(out_dir, converted)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"source": converted.source.name, "source_sha256": sha256(converted.source), "sigma": converted.sigma,
            "converted_by": "restore convert-weights lidia"}
    save_model(converted.build(), converted.config.to_dict(), stem, meta)
    _add_card(out_dir, converted.name, converted.card())
    return target


def _check_no_rival(folder: Path, converted: Converted) -> None:
    """Refuse a second network of the same colour mode and noise level: the restorer would run only one of them."""
    path = folder / MANIFEST
    models = json.loads(path.read_text()).get("models", {}) if path.is_file() else {}
    for name, card in models.items():
        if name != converted.name and card.get("restorer") == "lidia" and card.get("color") == converted.color \
                and card.get("sigma") == converted.sigma:
            raise RestoreError(f"{folder} already holds {name} for {converted.color} sigma {converted.sigma:g}: "
                               f"LIDIA would run only one of them; convert {converted.name} into another folder")


def _add_card(folder: Path, name: str, card: dict) -> None:
    """List the folder's files with their sha256 and add ``name``'s card, the manifest replaced atomically."""
    doc = update_manifest(folder)
    doc["models"][name] = card
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)


def _load_safely(path: Path) -> object:
    if not path.is_file():
        raise RestoreError(f"LIDIA checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        raise RestoreError(f"{path} is a safetensors file: pass --weights the folder holding it and its manifest.json "
                           "(as restore convert-weights writes it)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refused an object that only arbitrary code could rebuild.
        raise RestoreError(f"{path} holds pickled objects other than tensors: refused (it is not unpickled, as that could "
                           "run code); a LIDIA checkpoint holds only tensors") from None
    except Exception as e:  # noqa: BLE001 - zip, EOF and torch errors alike mean the same to the user
        raise RestoreError(f"cannot read {path} as a PyTorch checkpoint: {str(e).splitlines()[0][:120]}") from None


def _authors_state(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside the loaded object: ``obj["state_dict"]`` (or a bare state dict)."""
    if not isinstance(obj, dict):
        raise RestoreError(f"{path} holds a {type(obj).__name__}, not the LIDIA authors' dict with a 'state_dict'")
    state = obj.get("state_dict", obj)
    if not isinstance(state, dict):
        raise RestoreError(f"{path}: its 'state_dict' is a {type(state).__name__}, not a dict of tensors")
    # A net saved from nn.DataParallel prefixes every key with "module.".
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if FIRST_LAYER_KEY not in state:
        keys = ", ".join(sorted(map(str, obj))[:6])
        raise RestoreError(f"{path} is not in the LIDIA authors' layout: no '{FIRST_LAYER_KEY}' "
                           f"(its {'state_dict' if 'state_dict' in obj else 'dict'} has {keys or 'no keys'}"
                           f"{', ...' if len(obj) > 6 else ''})")
    bad = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise RestoreError(f"{path}: state_dict entries that are not tensors: {', '.join(bad[:4])}")
    return state


def infer_config(state: dict[str, torch.Tensor], path: Path) -> LidiaConfig:
    """Colour mode, patch size, width and full/small variant from the tensors' shapes."""
    first = state[FIRST_LAYER_KEY]
    if first.dim() != 2:
        raise RestoreError(f"{path}: '{FIRST_LAYER_KEY}' has shape {tuple(first.shape)}, expected width x patch values")
    width, n = first.shape
    channels = next((c for c in (1, 3) if n % c == 0 and math.isqrt(n // c) ** 2 == n // c), None)
    if channels is None:
        raise RestoreError(f"{path}: {n} values per patch is neither a gray p x p nor a colour 3 x p x p patch")
    k = state.get("separable_fc_net.sep_part1_s0.ver_hor_bn_re0.ver_hor.hor.weight", torch.empty(14, 14)).shape[0]
    light = "separable_fc_net.sep_part1_s0.a" not in state
    return LidiaConfig(channels=channels, patch=math.isqrt(n // channels), width=width, k=k, light=light)


def _noise_level(path: Path, sigma: float | None) -> tuple[float, tuple[float, float] | None]:
    if sigma is not None:
        if not math.isfinite(sigma) or sigma <= 0:
            raise RestoreError(f"the noise level must be positive (0-255 units), got {sigma:g}")
        return float(sigma), None
    match = SIGMA_IN_NAME.search(path.name)
    if match is None:
        raise RestoreError(f"cannot tell which noise level {path.name} was trained for: its name does not say, as the "
                           "authors' do (model_state_sigma_25_bw.pt); give it: restore convert-weights lidia FILE "
                           "--sigma 25 -o DIR (Python: sigma_255=25)")
    if match.group(1).lower() == "blind":
        return math.sqrt(BLIND_RANGE[0] * BLIND_RANGE[1]), BLIND_RANGE
    return float(match.group(1)), None


def to_ours(state: dict[str, torch.Tensor], config: LidiaConfig, path: Path) -> dict[str, torch.Tensor]:
    """Our ``Lidia(config)`` state dict from the authors' ``state``, every key and shape checked."""
    expected = dict(_key_pairs(config))
    missing = [theirs for theirs, _ in expected.values() if theirs not in state
               and not theirs.endswith("num_batches_tracked")]
    fixed = {FIXED_KERNEL_KEY}
    unexpected = sorted(set(state) - {theirs for theirs, _ in expected.values()} - fixed)
    variant = f"{'small' if config.light else 'full'} {'gray' if config.channels == 1 else 'colour'} LIDIA"
    if missing or unexpected:
        parts = ([f"missing {_some(missing)}"] if missing else []) + ([f"unexpected {_some(unexpected)}"]
                                                                      if unexpected else [])
        raise RestoreError(f"{path} does not match the authors' {variant} layout: {'; '.join(parts)}")
    _check_fixed_kernel(state, path)
    reference = Lidia(config).state_dict()
    ours = {}
    for our_key, (their_key, reshape) in expected.items():
        if their_key not in state:  # num_batches_tracked: absent from checkpoints older than torch 0.4.1
            ours[our_key] = torch.zeros((), dtype=torch.long)
            continue
        value = state[their_key]
        want = reference[our_key].shape
        value = value.t() if reshape == "T" and value.dim() == 2 else value
        # Equal up to axes of length 1: their b is hor_out x ver_out, ours hor_out x 1 x ver_out; their a is (1,).
        if [d for d in value.shape if d != 1] != [d for d in want if d != 1] or (reshape == "T" and value.dim() != 2):
            raise RestoreError(f"{path}: '{their_key}' has shape {tuple(state[their_key].shape)}, expected "
                               f"{_their_shape(their_key, want, reshape)} for a {variant}")
        ours[our_key] = value.reshape(want).to(reference[our_key].dtype).clone()
    return ours


def _their_shape(key: str, ours: torch.Size, reshape: str) -> tuple[int, ...]:
    """The shape the authors' code gives the tensor we store as ``ours``."""
    if reshape == "T":
        return tuple(ours[::-1])
    if key.endswith(".b"):
        return ours[0], ours[2]
    return tuple(ours) or (1,)


def _some(keys: list[str]) -> str:
    return ", ".join(f"'{k}'" for k in keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _check_fixed_kernel(state: dict[str, torch.Tensor], path: Path) -> None:
    """Their scale-1 smoothing kernel is fixed; a checkpoint with another would not be the network we run."""
    if FIXED_KERNEL_KEY not in state:
        return
    k1 = torch.tensor([0.25, 0.5, 0.25])
    want = (k1[:, None] * k1[None, :]).view(1, 1, 3, 3)
    got = state[FIXED_KERNEL_KEY].float()
    if got.shape != want.shape or not torch.allclose(got, want, atol=1e-6):
        raise RestoreError(f"{path}: '{FIXED_KERNEL_KEY}' is not the fixed [1/4 1/2 1/4] smoothing kernel")


def _key_pairs(config: LidiaConfig) -> Iterator[tuple[str, tuple[str, str]]]:
    """(our key, (their key, how the value maps: "T" transposed, "" reshaped)) for every tensor of our net."""
    sep = "separable_fc_net."
    for i in (0, 1):
        ours, theirs = f"branches.{i}.", f"{sep}sep_part1_s{i}."
        yield from _mlp(f"{ours}weights.", f"weights_net{i}.")
        yield f"{ours}weights.alpha", (f"alpha{i}", "")
        yield from _separable(f"{ours}first.", f"{theirs}ver_hor_bn_re0.ver_hor.")
        if not config.light:
            yield f"{ours}second.a", (f"{theirs}a", "")
            yield from _separable(f"{ours}second.layer.", f"{theirs}ver_hor_bn_re1.ver_hor.", bn=f"{theirs}ver_hor_bn_re1.bn.")
        yield from _separable(f"{ours}to_patch.", f"{sep}ver_hor_agg{i}_pre.")
        yield from _separable(f"{ours}from_patch.", f"{sep}ver_hor_bn_re_agg{i}_post.ver_hor.")
    part2 = f"{sep}sep_part2."
    yield from _separable("joint.", f"{part2}ver_hor_bn_re2.ver_hor.", bn=f"{part2}ver_hor_bn_re2.bn.")
    if not config.light:
        yield "joint2.a", (f"{part2}a", "")
        yield from _separable("joint2.layer.", f"{part2}ver_hor_bn_re3.ver_hor.", bn=f"{part2}ver_hor_bn_re3.bn.")
    yield from _separable("out.", f"{part2}ver_hor_out.")
    yield "beta", ("beta", "")


def _separable(ours: str, theirs: str, bn: str | None = None) -> Iterator[tuple[str, tuple[str, str]]]:
    """A VerHorMat (and its BatchNorm) as our Separable."""
    yield f"{ours}pix", (f"{theirs}ver.weight", "T")  # Linear's out x in -> our in x out
    yield f"{ours}nb", (f"{theirs}hor.weight", "")
    yield f"{ours}bias", (f"{theirs}b", "")  # hor_out x ver_out -> hor_out x 1 x ver_out
    if bn is not None:
        for name in BN_FIELDS:
            yield f"{ours}bn.{name}", (f"{bn}{name}", "")


def _mlp(ours: str, theirs: str, depth: int = 6) -> Iterator[tuple[str, tuple[str, str]]]:
    """Their FcNet (fc0, bn0, relu0, ..., fc_out) as our Sequential MLP (Linear, BatchNorm, ReLU per block)."""
    for j in range(depth):
        yield f"{ours}mlp.{3 * j}.weight", (f"{theirs}fc{j}.weight", "")
        for name in BN_FIELDS:
            yield f"{ours}mlp.{3 * j + 1}.{name}", (f"{theirs}bn{j}.{name}", "")
    yield f"{ours}mlp.{3 * depth}.weight", (f"{theirs}fc_out.weight", "")
    yield f"{ours}mlp.{3 * depth}.bias", (f"{theirs}fc_out.bias", "")
