"""Size, parameter count and storage type of shipped weights, from the manifest and the files' headers (no torch).

A ``.safetensors`` file starts with the length of its JSON header (8 bytes,
little-endian) and the header itself, which gives every tensor's dtype and
shape: enough to count parameters without reading, or importing anything to
read, the tensors. ``restore models`` stays a fraction of a second this way.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import NamedTuple

from restore.catalogue import read_manifest, weights_dir
from restore.errors import RestoreError

HEADER_LIMIT = 100 * 2**20  # a header this large is not one the toolkit wrote
SUFFIX = ".safetensors"
FLOAT_TYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}


class WeightFacts(NamedTuple):
    """One shipped weights file as ``restore models`` reports it."""

    file: str
    bytes: int | None  # the manifest's size (the file's own when the manifest lacks it); None: no file
    parameters: int | None  # values of its floating tensors; None: the file is absent or unreadable
    dtypes: tuple[str, ...]  # storage types, e.g. ("F16",)


def tensor_shapes(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{tensor name: (dtype, shape)} from a safetensors file's header."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise RestoreError(f"{path}: too short for a safetensors file")
        (length,) = struct.unpack("<Q", head)
        if length > HEADER_LIMIT:
            raise RestoreError(f"{path}: safetensors header of {length} bytes; not a safetensors file?")
        try:
            header = json.loads(fh.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RestoreError(f"{path}: unreadable safetensors header ({e})") from None
    return {name: (entry["dtype"], tuple(entry["shape"])) for name, entry in header.items() if name != "__metadata__"}


def weight_facts(name: str, folder: Path | None = None) -> WeightFacts:
    """The facts of weights ``name`` (``NAME.safetensors`` in ``folder``, default the shipped weights folder)."""
    folder = weights_dir() if folder is None else folder
    file = name + SUFFIX
    path = folder / file
    listed = read_manifest().get("files", {}).get(file, {}).get("bytes") if folder == weights_dir() else None
    if not path.is_file():
        return WeightFacts(file, listed, None, ())
    try:
        shapes = tensor_shapes(path)
    except (OSError, RestoreError, KeyError, TypeError):
        return WeightFacts(file, listed or path.stat().st_size, None, ())
    # Floating tensors: the weights and BatchNorm's running statistics, not its integer step counters.
    parameters = sum(math.prod(shape) for dtype, shape in shapes.values() if dtype in FLOAT_TYPES)
    dtypes = tuple(sorted({dtype for dtype, _ in shapes.values()}))
    return WeightFacts(file, listed or path.stat().st_size, parameters, dtypes)


def human_size(count: int | None, unit: str = "B") -> str:
    """1234567 -> ``1.2 MB``; parameters with ``unit=""`` -> ``1.2 M``; None -> ``?``."""
    if count is None:
        return "?"
    for scale, prefix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if count >= scale:
            return f"{count / scale:.1f} {prefix}{unit}".rstrip()
    return f"{count} {unit}".rstrip()
