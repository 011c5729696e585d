"""What a batch job (``restore.run``) restores: a glob, a folder, paths or arrays, each with its output path.

Files keep their names under ``out_dir``; a glob or a folder keeps the
sub-folders below its root, so that two ``a.png`` in different folders do not
collide (a folder's sub-folders are read with ``recursive``). Arrays become
``image_00000.png``, ``image_00001.png``, ... (16-bit PNG for uint16 arrays,
8-bit otherwise), numbered by their place in ``inputs``. ``Naming`` adds a
suffix to every name and may change its format (``restore.batch_names``).
"""
from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restore.batch_names import KEEP, output_name
from restore.errors import RestoreError
from restore.io import IMAGE_EXTENSIONS, MAX_PIXELS, ImageData, from_numpy_image, list_images, read_image
from restore.pixel_values import check_finite, check_unit_range

_MAGIC = re.compile(r"[*?\[]")
_INPUTS_HELP = "an image path, a folder, a glob such as 'photos/**/*.png', a list of paths or an iterable of arrays"


@dataclass
class Source:
    """One input of a batch job.

    Attributes:
        label: how the log names it: the path, or ``array[i]``.
        output: where its result goes.
        path: the file to read (None for an array).
        array: the in-memory image (None for a file).
        error: why it cannot be restored, known before reading it (recorded as failed).
    """

    label: str
    output: Path
    path: Path | None = None
    array: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Naming:
    """How outputs are named and which inputs a folder gives (see ``restore.batch_names``)."""

    ext: str = KEEP
    suffix: str = ""
    recursive: bool = False

    def under(self, out_dir: Path, name: Path) -> Path:
        """Where the input ``name`` (relative to its root) goes in ``out_dir``."""
        return out_dir / output_name(name, self.ext, self.suffix)


def plan_sources(inputs: Any, out_dir: Path, naming: Naming = Naming()) -> tuple[Iterator[Source], int | None]:
    """The sources of ``inputs`` and how many there are (None for a one-pass iterator, read lazily).

    Raises:
        RestoreError: inputs of an unknown kind, a path or glob that finds no image,
            or two inputs (or an input and an output) that would share a file.
    """
    if isinstance(inputs, (str, os.PathLike)):
        sources = _file_sources(Path(os.path.expanduser(os.fspath(inputs))), out_dir, naming)
        _refuse_collisions(sources)
        return iter(sources), len(sources)
    if isinstance(inputs, torch.Tensor) and inputs.ndim == 4:
        inputs = list(inputs)  # B x C x H x W: B images
    if isinstance(inputs, (np.ndarray, torch.Tensor)):
        raise RestoreError(f"inputs is a single {tuple(inputs.shape)} array: pass a list of images, e.g. [image]")
    if isinstance(inputs, (list, tuple)):
        sources = [_item_source(i, item, out_dir, naming) for i, item in enumerate(inputs)]
        _refuse_collisions(sources)
        return iter(sources), len(sources)
    if isinstance(inputs, Iterable):
        return _lazy_sources(inputs, out_dir, naming), None
    raise RestoreError(f"inputs must be {_INPUTS_HELP}; got a {type(inputs).__name__}")


def read_source(source: Source, *, value_range: float | None = None, max_pixels: float | None = MAX_PIXELS) -> ImageData:
    """The source's pixels, alpha and bit depth, as ``restore.io.read_image`` gives them for a file.

    ``value_range`` scales files (see ``read_image``); arrays are taken as given, and
    refused, as files are, with NaN / inf pixels or float values far outside [0, 1].
    """
    if source.path is not None:
        return read_image(source.path, value_range=value_range, max_pixels=max_pixels)
    if isinstance(source.array, torch.Tensor):
        return _checked(_tensor_image(source.array, Path(source.label)), source.label)
    if isinstance(source.array, np.ndarray):
        return _checked(_numpy_image(source.array, Path(source.label)), source.label)
    raise RestoreError(f"{source.label}: expected an image path, a numpy array or a torch tensor, "
                       f"got a {type(source.array).__name__}")


def _checked(image: ImageData, label: str) -> ImageData:
    check_finite(image.pixels, label, "replace or mask them first (e.g. np.nan_to_num)")
    check_unit_range(image.pixels, label, "divide the array by its full-scale value first (e.g. a / {scale})")
    return image


# ------------------------------------------------------------------ files


def _file_sources(path: Path, out_dir: Path, naming: Naming) -> list[Source]:
    """Sources for a folder, one file or a glob (a path that exists is taken as it is, brackets and all)."""
    if path.is_dir():
        root, files = path, _outside(list_images(path, recursive=naming.recursive), path, out_dir)
        if not files:
            raise RestoreError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}"
                               f"{'' if naming.recursive else ' (recursive=True reads its sub-folders)'}")
    elif path.exists():
        return [Source(str(path), naming.under(out_dir, Path(path.name)), path=path)]
    elif _MAGIC.search(str(path)):
        prefix = _prefix(path.parts)
        root = Path(*prefix) if prefix else Path(".")
        matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
        files = _outside([m for m in matches if m.suffix.lower() in IMAGE_EXTENSIONS and m.is_file()], root, out_dir)
        if not files:
            raise RestoreError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) match {path}")
    else:
        raise RestoreError(f"input not found: {path} (expected {_INPUTS_HELP})")
    return [Source(str(f), naming.under(out_dir, f.relative_to(root)), path=f) for f in files]


def _prefix(parts: tuple[str, ...]) -> list[str]:
    """The leading path parts without glob characters: the folder a glob searches."""
    prefix = []
    for part in parts:
        if _MAGIC.search(part):
            break
        prefix.append(part)
    return prefix


def _outside(files: list[Path], root: Path, out_dir: Path) -> list[Path]:
    """Drop matches inside ``out_dir`` when it lies below the glob's root: they are outputs of an earlier run."""
    out, top = out_dir.resolve(), root.resolve()
    if top not in out.parents:
        return files
    return [f for f in files if out not in f.resolve().parents]


# ------------------------------------------------------------------ lists and iterables


def _item_source(index: int, item: Any, out_dir: Path, naming: Naming) -> Source:
    if isinstance(item, (str, os.PathLike)):
        path = Path(os.path.expanduser(os.fspath(item)))
        return Source(str(path), naming.under(out_dir, Path(path.name)), path=path)
    return Source(f"array[{index}]", naming.under(out_dir, Path(f"image_{index:05d}.png")), array=item)


def _lazy_sources(inputs: Iterable, out_dir: Path, naming: Naming) -> Iterator[Source]:
    """Sources one at a time: a clash is known only when it comes, so it fails that input alone."""
    seen: dict[Path, str] = {}
    for i, item in enumerate(inputs):
        source = _item_source(i, item, out_dir, naming)
        source.error = _clash(source, seen)
        yield source


def _refuse_collisions(sources: list[Source]) -> None:
    """Raise when two sources share an output or an output is any of the inputs (all known up front)."""
    inputs = {s.path.resolve(): s.label for s in sources if s.path is not None}
    seen: dict[Path, str] = {}
    for s in sources:
        error = _clash(s, seen)
        if error is None and s.output.resolve() in inputs:
            error = f"{s.output} would overwrite the input {inputs[s.output.resolve()]}; choose another out_dir"
        if error is not None:
            raise RestoreError(error)


def _clash(source: Source, seen: dict[Path, str]) -> str | None:
    """Why ``source`` cannot write its output (another input's output, or the input itself), else None."""
    dst = source.output.resolve()
    if source.path is not None and source.path.resolve() == dst:
        return f"{source.output} is the input {source.label}; choose another out_dir"
    if dst in seen:
        # Two files of one folder meet only when ext gave them one format (a.png, a.tif -> a.jpg).
        here, there = Path(source.label), Path(seen[dst])
        same_folder = source.path is not None and here.parent == there.parent and here.name != there.name
        advice = ("keep each input's format (ext=keep) or rename one" if same_folder
                  else "give a glob or a folder to keep their sub-folders apart")
        return f"{source.label} and {seen[dst]} would both be written to {source.output}; {advice}"
    seen[dst] = source.label
    return None


# ------------------------------------------------------------------ arrays


def _numpy_image(array: np.ndarray, label: Path) -> ImageData:
    """An H x W or H x W x C array as a PNG would hold it: 2 or 4 channels end with alpha."""
    if array.ndim not in (2, 3):
        raise RestoreError(f"expected an H x W or H x W x C array, got shape {array.shape}")
    alpha = None
    if array.ndim == 3 and array.shape[2] in (2, 4):
        array, alpha = array[:, :, :-1], np.ascontiguousarray(array[:, :, -1])
    pixels = from_numpy_image(array)
    _check_png_channels(pixels)
    depth = 16 if array.dtype == np.uint16 else 8
    return ImageData(pixels=pixels, alpha=alpha, bit_depth=depth, path=label)


def _tensor_image(x: torch.Tensor, label: Path) -> ImageData:
    """A C x H x W or 1 x C x H x W float tensor in [0, 1]."""
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3:
        raise RestoreError(f"expected a C x H x W or 1 x C x H x W tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise RestoreError(f"expected a float tensor in [0, 1], got dtype {x.dtype}")
    pixels = x.detach().to("cpu", torch.float32)[None]
    _check_png_channels(pixels)
    return ImageData(pixels=pixels, alpha=None, bit_depth=8, path=label)


def _check_png_channels(pixels: torch.Tensor) -> None:
    # Arrays are written as PNG, which holds gray or RGB: refuse others before restoring, not after.
    if pixels.shape[1] not in (1, 3):
        raise RestoreError(f"an array input is written as PNG: 1 or 3 channels (+ alpha), got {pixels.shape[1]}")


def single_source(inputs: Any, output: Path) -> Source:
    """The one source of a job that names its output file (``restore.run(path, output=...)``)."""
    if not isinstance(inputs, (str, os.PathLike)):
        raise RestoreError(f"output= names one output file: inputs must be one image path, got a {type(inputs).__name__}")
    path = Path(os.path.expanduser(os.fspath(inputs)))
    if not path.is_file():
        raise RestoreError(f"input not found: {path}" if not path.exists() else
                           f"output= names one output file: {path} is not a file (use out_dir= for a folder)")
    if output.suffix.lower() not in IMAGE_EXTENSIONS:
        raise RestoreError(f"output {output}: unknown image format {output.suffix or '(no extension)'}")
    if output.resolve() == path.resolve():
        raise RestoreError(f"output {output} is the input; refusing to overwrite an input")
    return Source(str(path), output, path=path)
