"""Pair input images with output paths for the file-processing commands."""
from __future__ import annotations

from pathlib import Path

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


def plan_outputs(inputs: Path, output: Path | None, suffix: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs for a file, a folder or a bundled ``example:NAME``.

    A file goes to ``output`` or, without one, to ``<stem>_<suffix><ext>`` beside it.
    A folder goes to the folder ``output`` (required), one file per image, same names.
    An example needs ``output``: nothing is written inside the installed packages.
    """
    if str(inputs).startswith(EXAMPLE_PREFIX):
        if output is None:
            raise RestoreError(f"an example input needs an output file: -o OUT.png (input {inputs})")
        inputs = example_path(str(inputs)[len(EXAMPLE_PREFIX):])
    if not inputs.exists():
        raise RestoreError(f"input not found: {inputs}")
    if inputs.is_dir():
        if output is None:
            raise RestoreError(f"a folder input needs an output folder: -o OUT_DIR (input {inputs})")
        if output.exists() and not output.is_dir():
            raise RestoreError(f"output {output} is a file; a folder input needs an output folder")
        if output.resolve() == inputs.resolve():
            raise RestoreError(f"output folder {output} is the input folder; choose another -o (inputs are never overwritten)")
        images = list_images(inputs)
        if not images:
            raise RestoreError(f"no images (png, jpg, tif, bmp) in folder {inputs}")
        return [(p, output / p.name) for p in images]
    if output is None:
        output = inputs.with_name(f"{inputs.stem}_{suffix}{inputs.suffix}")
    elif output.is_dir():
        output = output / inputs.name
    if output.suffix.lower() not in IMAGE_EXTENSIONS:
        raise RestoreError(f"output {output}: unknown image format {output.suffix or '(no extension)'}")
    if output.resolve() == inputs.resolve():
        raise RestoreError(f"output {output} is the input; refusing to overwrite an input")
    return [(inputs, output)]
