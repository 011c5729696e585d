"""``restore compare``: image files side by side in one labelled grid, scored against a reference when given."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from restore.compare_grid import Crop, compare_grid
from restore.errors import RestoreError
from restore.io import check_output, read_image, write_image


@dataclass
class CompareJob:
    """Everything one ``restore compare`` call was asked to do."""

    images: list[Path]
    output: Path
    reference: Path | None = None
    crop: str | None = None
    labels: str | None = None
    columns: int | None = None
    overwrite: bool = False
    quiet: bool = False


def run_compare_job(job: CompareJob) -> None:
    """Check every flag and the output path first, then read, draw and write the grid atomically."""
    crop = parse_crop(job.crop) if job.crop is not None else None
    labels = panel_labels(job.images, job.labels)
    if job.columns is not None and job.columns < 1:
        raise RestoreError(f"--columns must be at least 1, got {job.columns}")
    protect = [*job.images, *([job.reference] if job.reference else [])]
    if any(job.output.resolve() == path.resolve() for path in protect):
        raise RestoreError(f"{job.output}: refusing to write over an input image")
    if job.output.exists() and not job.overwrite:
        if not job.quiet:
            print(f"skipped {job.output} (exists; --overwrite to replace)", file=sys.stderr)
        return
    check_output(job.output, 16, channels=3)
    shown = [read_image(path) for path in job.images]
    reference = read_image(job.reference) if job.reference is not None else None
    grid = compare_grid([im.pixels for im in shown], labels, reference=None if reference is None else reference.pixels,
                        reference_label=f"reference: {job.reference.name}" if job.reference else "reference",
                        crop=crop, columns=job.columns)
    # A 16-bit input gets a 16-bit grid, so that what it shows is not rounded to 8 bits first.
    depth = 16 if max(im.bit_depth for im in [*shown, *([reference] if reference else [])]) > 8 else 8
    write_image(job.output, grid, bit_depth=depth, overwrite=job.overwrite, protect=protect)
    if not job.quiet:
        scored = f", scored against {job.reference}" if job.reference else ""
        count = f"{len(shown)} image" + ("s" if len(shown) != 1 else "")
        print(f"wrote {job.output} ({grid.shape[-1]} x {grid.shape[-2]}, {count}{scored})", file=sys.stderr)


def parse_crop(text: str) -> Crop:
    """``X,Y,W,H`` (pixels: top-left corner, width, height) -> ``Crop``; anything else is refused."""
    parts = text.split(",")
    try:
        values = [int(part.strip()) for part in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise RestoreError(f"--crop must be X,Y,W,H in whole pixels (e.g. 100,80,64,64), got {text!r}")
    return Crop(*values)


def panel_labels(images: list[Path], labels: str | None) -> list[str]:
    """``--labels a,b,c`` (one per image), else the file names (the paths as given when two names are alike)."""
    if labels is not None:
        names = [label.strip() for label in labels.split(",")]
        if len(names) != len(images):
            raise RestoreError(f"--labels has {len(names)} comma-separated names for {len(images)} images")
        return names
    names = [path.name for path in images]
    return names if len(set(names)) == len(names) else [str(path) for path in images]
