"""Copy trained weights into weights/ and record them in the manifest.

    python -m restore.training.release runs/lidia-gray-s25 --restorer lidia --color gray --sigma 25 \
        --summary "LIDIA-S gray, sigma 25" [--score "BSD68 s25=29.0 dB"]

The manifest's "models" section is what ``restore models`` and the restorers
read; "files" holds the sha256 of every shipped file.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from restore.weights import MANIFEST, WEIGHTS_DIR, update_manifest


def release(run: Path, name: str, card: dict, folder: Path = WEIGHTS_DIR) -> None:
    """Copy ``run``.safetensors/.json to ``folder/name``.* and add ``card`` to the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    for ext in (".safetensors", ".json"):
        shutil.copyfile(run.with_suffix(ext), folder / f"{name}{ext}")
    path = folder / MANIFEST
    doc = json.loads(path.read_text()) if path.is_file() else {"files": {}, "models": {}}
    old = doc.get("models", {}).get(name, {})
    doc.setdefault("models", {})[name] = {**old, **card}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    update_manifest(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="training output stem (without extension)")
    ap.add_argument("--name", default=None, help="shipped name (default: the run's stem)")
    ap.add_argument("--restorer", required=True)
    ap.add_argument("--color", choices=["gray", "color"], required=True)
    ap.add_argument("--sigma", type=float, required=True)
    ap.add_argument("--summary", default="")
    args = ap.parse_args()
    card = {"restorer": args.restorer, "color": args.color, "sigma": args.sigma, "summary": args.summary}
    release(args.run, args.name or args.run.name, card)


if __name__ == "__main__":
    main()
