"""``restore --version``: the installed distribution's version, read from its metadata without importing torch."""
from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "restore"


def version_line() -> str:
    """``restore 0.1.0``, or ``restore (version unknown: not installed)`` when run from a bare source tree."""
    try:
        return f"{DISTRIBUTION} {metadata.version(DISTRIBUTION)}"
    except metadata.PackageNotFoundError:
        return f"{DISTRIBUTION} (version unknown: not installed; pip install -e . records it)"
