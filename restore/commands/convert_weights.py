"""``restore convert-weights lidia FILE -o DIR``: another tool's checkpoint written once as our weights folder.

After it, ``--weights DIR`` loads safetensors + JSON config with no pickle at all.
"""
from __future__ import annotations

import sys
from pathlib import Path

from restore.errors import RestoreError

# The checkpoint formats convert-weights reads, by the restorer that runs them.
KINDS = ("lidia",)


def run_convert(kind: str, checkpoint: Path, out_dir: Path, sigma: float | None, overwrite: bool, quiet: bool) -> None:
    """Convert ``checkpoint`` (``kind``'s authors' format) into ``out_dir``; say what was written.

    Args:
        sigma: the noise level in 0-255 units, for files whose name does not say it.
    """
    if kind not in KINDS:
        raise RestoreError(f"convert-weights knows {', '.join(KINDS)}, not '{kind}'")
    from restore.restorers.lidia_checkpoint import convert_checkpoint

    written = convert_checkpoint(checkpoint, out_dir, sigma_255=sigma, overwrite=overwrite)
    if not quiet:
        print(f"wrote {written} (+ {written.with_suffix('.json').name}, manifest.json); run it with "
              f"--model lidia --weights {out_dir}", file=sys.stderr)
