"""The one exception type the toolkit raises for bad input or missing resources."""
from __future__ import annotations


class RestoreError(ValueError):
    """A user-facing error: the message names the bad value and what was expected.

    Subclasses ValueError so that callers catching ValueError keep working.
    The CLI prints the message on one line and exits non-zero.
    """


class InternalFailure(Exception):
    """A failure that is the toolkit's fault, not the input's (an unexpected exception met while restoring).

    The CLI says so on one line, asks for a report, and exits with code 3.
    """
