"""Atomic writes: a temp file beside the output, then a rename onto it; and the leftovers of killed writers.

A reader never sees a half-written output, and a write that fails leaves
nothing behind. A writer killed mid-write (no ``finally``) leaves its hidden temp
file; ``remove_stale_temps`` tells those from a live writer's by the PID in the name.
"""
from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from restore.errors import RestoreError
from restore.io.formats import PathLike

# Temp files of atomic writes: ``.NAME.restore-PID-TOKEN.tmp.EXT`` beside the output (PID: the writer's).
TEMP_MARK = ".restore-"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.restore-(?P<pid>\d+)-[0-9a-f]{8}\.tmp(\.[A-Za-z0-9]+)?$")


def temp_path(p: Path) -> Path:
    """The temp file an atomic write of ``p`` goes through: ``.NAME.restore-PID-TOKEN.tmp.EXT`` beside it.

    Same folder (the rename stays on one file system), same extension (for
    writers that go by it), hidden (``list_images`` never picks up a leftover),
    and named after ``p`` and the writing process, so that a later run can tell
    a killed run's leftovers from a live writer's file (``remove_stale_temps``).
    """
    return p.with_name(f".{p.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}.tmp{p.suffix}")


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (this one always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def stale_temps(output: PathLike, before: float | None = None) -> list[Path]:
    """Temp files of interrupted writes of ``output``: no live writer process, modified before ``before``."""
    p = Path(output)
    if not p.parent.is_dir():
        return []
    found = []
    for f in p.parent.glob(f".{glob_escape(p.name)}{TEMP_MARK}*.tmp*"):
        m = _TEMP_NAME.match(f.name)
        if m is None or m.group("name") != p.name or _pid_alive(int(m.group("pid"))):
            continue
        try:
            if before is None or f.stat().st_mtime < before:
                found.append(f)
        except OSError:
            continue
    return sorted(found)


def remove_stale_temps(outputs: Iterable[PathLike], before: float | None = None) -> list[Path]:
    """Remove the temp files killed runs left beside ``outputs`` (see ``stale_temps``); return those removed."""
    removed = []
    for output in outputs:
        for f in stale_temps(output, before):
            try:
                f.unlink()
            except OSError:
                continue
            removed.append(f)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def atomic_write(p: Path, write: Callable[[BinaryIO], None], what: str = "file") -> None:
    """Write through ``write`` into a temp file beside ``p``, then rename it onto ``p``.

    ``what`` names the file in the one-line error (``cannot write <what>``).
    """
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RestoreError(f"{p}: cannot create the output folder ({exc.strerror or exc})") from None
    tmp = temp_path(p)
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except OSError as exc:
        raise RestoreError(f"{p}: cannot write {what} ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
