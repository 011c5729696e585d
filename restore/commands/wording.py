"""Say the library's messages in the command line's words: its keyword arguments become the CLI's flags."""
from __future__ import annotations

import re

# Keyword arguments of the library whose messages reach CLI users, and the flags that set them.
FLAGS = {name: "--" + name.replace("_", "-") for name in (
    "value_range", "max_pixels", "bit_depth", "overwrite", "tile", "overlap", "batch_size", "precision", "seed",
    "std_map", "save_samples", "psf_mtf", "sigma_poisson", "workers", "scheduler", "sigma", "kernel", "scale", "mask",
    "out_dir", "output", "ext", "suffix", "quality", "recursive", "strip_metadata")}
FLAGS["out_dir"] = FLAGS["output"] = "-o"
_KEYWORD = re.compile(r"\b(" + "|".join(FLAGS) + r")=(\S+?)(?=[,;)\s]|$)")
_LEADING = re.compile(r"^(" + "|".join(FLAGS) + r")\b(?=[ (])")
# Keyword names no one would write in prose (they have an underscore): reworded wherever they appear.
_BARE = re.compile(r"(?<![-\w])(" + "|".join(n for n in FLAGS if "_" in n) + r")\b(?!=)")


def cli_words(message: str) -> str:
    """``pass value_range=255`` -> ``pass --value-range 255`` (``overwrite=True`` -> ``--overwrite``)."""
    def flag(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        return FLAGS[name] if value == "True" else f"{FLAGS[name]} {value}"

    message = _BARE.sub(lambda m: FLAGS[m.group(1)], _KEYWORD.sub(flag, message))
    # A message that starts with a keyword's name is about that option: "tile must be ..." -> "--tile must be ...".
    return _LEADING.sub(lambda m: FLAGS[m.group(1)], message)
