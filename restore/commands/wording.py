"""Say the library's messages in the command line's words: its keyword arguments become the CLI's flags."""
from __future__ import annotations

import re

# Keyword arguments of the library whose messages reach CLI users, and the flags that set them.
FLAGS = {"value_range": "--value-range", "max_pixels": "--max-pixels", "bit_depth": "--bit-depth",
         "overwrite": "--overwrite"}
_KEYWORD = re.compile(r"\b(" + "|".join(FLAGS) + r")=(\S+?)(?=[,;)\s]|$)")


def cli_words(message: str) -> str:
    """``pass value_range=255`` -> ``pass --value-range 255`` (``overwrite=True`` -> ``--overwrite``)."""
    def flag(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        return FLAGS[name] if value == "True" else f"{FLAGS[name]} {value}"

    return _KEYWORD.sub(flag, message)
