"""How a batch names its outputs: the input's name, a suffix added to its stem, the format chosen by ``ext``.

``photos/2024/a.png`` restored into ``out/`` with ``ext="jpg"`` and
``suffix="_clean"`` becomes ``out/2024/a_clean.jpg``; ``ext="keep"`` keeps each
input's own format. The names are planned before any work, so the resumable
log and the skip-existing check see the same paths the writer writes.
"""
from __future__ import annotations

from pathlib import Path

# ``ext`` values -> the extension written (None: the input's own).
OUTPUT_EXTENSIONS: dict[str, str | None] = {"keep": None, "png": ".png", "tif": ".tif", "jpg": ".jpg", "webp": ".webp"}
KEEP = "keep"


def output_name(name: Path, ext: str = KEEP, suffix: str = "") -> Path:
    """``name`` (a file name or a relative path) with ``suffix`` after its stem and the extension ``ext`` picks."""
    extension = OUTPUT_EXTENSIONS[ext] or name.suffix
    return name.with_name(f"{name.stem}{suffix}{extension}")
