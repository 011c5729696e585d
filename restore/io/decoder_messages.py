"""What image decoders say when they fail, turned into the one line of a ``RestoreError``.

libjpeg (inside OpenCV) reports damaged data only as a warning printed on file
descriptor 2, and returns garbage; the reader captures those lines to refuse the file.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator


def first_line(exc: BaseException) -> str:
    """The last non-empty line of an exception's message (OpenCV's and tifffile's say what failed last)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


@contextlib.contextmanager
def decoder_messages() -> Iterator[Callable[[], list[str]]]:
    """Capture what C decoders (libjpeg inside OpenCV) print on file descriptor 2 while decoding.

    Yields a function giving the captured lines once the block is done.
    """
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor (embedded interpreters): nothing to capture
        yield lambda: lines
        return
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield lambda: lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode("utf-8", "replace").splitlines())
