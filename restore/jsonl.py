"""An append-only JSON-lines file: one flushed line per record, so a killed run keeps every finished one.

Used by ``restore bench`` (per-image records) and ``restore.run`` (the batch log).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Self

from restore.errors import RestoreError


class JsonLinesWriter:
    """Appends records to ``path`` (created with its folder), ending a killed run's partial last line first."""

    def __init__(self, path: Path, what: str = "log") -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            cut_short = _ends_mid_line(path)
            self._file: IO[str] = open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise RestoreError(f"{path}: cannot open the {what} ({exc.strerror or exc})") from None
        self.path = path
        if cut_short:
            self._file.write("\n")  # so that the next record starts on a line of its own

    def write(self, record: dict) -> None:
        """Append one record as a line and flush it."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_mid_line(path: Path) -> bool:
    """Whether ``path`` exists and its last byte is not a newline (a killed run's partial line); reads that byte only."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) != b"\n"
