"""Pair input images with output paths for the file-processing commands."""
from __future__ import annotations

from pathlib import Path

from restore.batch_names import KEEP, output_name
from restore.errors import RestoreError
from restore.io import IMAGE_EXTENSIONS, list_images

EXAMPLE_PREFIX = "example:"


def example_path(name: str) -> Path:
    """A sample image bundled with scikit-image (``example:camera``, ``example:astronaut``, ...)."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    path = folder / f"{name}.png"
    if not path.is_file():
        names = sorted(p.stem for p in folder.glob("*.png"))
        raise RestoreError(f"unknown example '{name}'; bundled examples: {', '.join(names)}")
    return path


def plan_outputs(inputs: Path, output: Path | None, default_suffix: str, *, ext: str = KEEP,
                 suffix: str | None = None, recursive: bool = False) -> list[tuple[Path, Path]]:
    """(input, output) pairs for a file, a folder or a bundled ``example:NAME``.

    A file goes to ``output`` or, without one, to ``<stem>_<default_suffix><ext>`` beside it
    (``suffix`` and ``ext`` rename it; with ``output`` a folder, they rename it in there).
    A folder goes to the folder ``output`` (required), one file per image, same names
    unless ``suffix`` or ``ext`` say otherwise (``restore.run`` names them), sub-folders
    too with ``recursive``. An example needs ``output``: nothing is written inside the
    installed packages.
    """
    if str(inputs).startswith(EXAMPLE_PREFIX):
        if output is None:
            raise RestoreError(f"an example input needs an output file: -o OUT.png (input {inputs})")
        inputs = example_path(str(inputs)[len(EXAMPLE_PREFIX):])
    if not inputs.exists():
        raise RestoreError(f"input not found: {inputs}")
    if inputs.is_dir():
        return _folder_pairs(inputs, output, ext, suffix or "", recursive)
    if output is None:
        output = inputs.parent / output_name(Path(inputs.name), ext, f"_{default_suffix}" if suffix is None else suffix)
    elif output.is_dir():
        output = output / output_name(Path(inputs.name), ext, suffix or "")
    elif ext != KEEP or suffix is not None:
        raise RestoreError(f"-o {output} names the output file: --ext and --suffix rename outputs in a folder")
    if output.suffix.lower() not in IMAGE_EXTENSIONS:
        raise RestoreError(f"output {output}: unknown image format {output.suffix or '(no extension)'}")
    if output.resolve() == inputs.resolve():
        raise RestoreError(f"output {output} is the input; refusing to overwrite an input")
    return [(inputs, output)]


def _folder_pairs(inputs: Path, output: Path | None, ext: str, suffix: str, recursive: bool) -> list[tuple[Path, Path]]:
    if output is None:
        raise RestoreError(f"a folder input needs an output folder: -o OUT_DIR (input {inputs})")
    if output.exists() and not output.is_dir():
        raise RestoreError(f"output {output} is a file; a folder input needs an output folder")
    if output.resolve() == inputs.resolve():
        raise RestoreError(f"output folder {output} is the input folder; choose another -o (inputs are never overwritten)")
    images = list_images(inputs, recursive=recursive)
    if not images:
        hint = "" if recursive else "; --recursive reads its sub-folders"
        raise RestoreError(f"no images ({', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)}) in folder {inputs}{hint}")
    return [(p, output / output_name(p.relative_to(inputs), ext, suffix)) for p in images]
