"""Copy trained weights into weights/ and record them in the manifest.

    python -m restore.training.release runs/lidia-gray-s25 --restorer lidia --color gray --sigma 25 \
        --summary "LIDIA-S gray, sigma 25"
    python -m restore.training.release runs/cae-a0483 --restorer vble --alpha 0.0483 --fp16 \
        --summary "compressive autoencoder, alpha 0.0483"

The manifest's "models" section is what ``restore models`` and the restorers
read; "files" holds the sha256 of every shipped file.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from restore.weights import MANIFEST, WEIGHTS_DIR, update_manifest


def release(run: Path, name: str, card: dict, folder: Path = WEIGHTS_DIR, fp16: bool = False) -> None:
    """Copy ``run``.safetensors/.json to ``folder/name``.* and add ``card`` to the manifest.

    ``fp16`` stores floating tensors in half precision (half the bytes; the
    restorers load them into float32).
    """
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run.with_suffix(".json"), folder / f"{name}.json")
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in load_file(run.with_suffix(".safetensors")).items()}
        save_file({k: v.contiguous() for k, v in state.items()}, folder / f"{name}.safetensors")
    else:
        shutil.copyfile(run.with_suffix(".safetensors"), folder / f"{name}.safetensors")
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
    ap.add_argument("--color", choices=["gray", "color"], help="LIDIA: the colour mode")
    ap.add_argument("--sigma", type=float, help="LIDIA: the training noise level (0-255)")
    ap.add_argument("--alpha", type=float, help="compressive autoencoder: the rate trade-off")
    ap.add_argument("--task", help="the task the weights restore (denoise, deblur, sr, prior)")
    ap.add_argument("--scale", type=int, help="super-resolution factor")
    ap.add_argument("--fp16", action="store_true", help="store weights in half precision")
    ap.add_argument("--summary", default="")
    args = ap.parse_args()
    card = {"restorer": args.restorer, "summary": args.summary}
    card.update({k: getattr(args, k) for k in ("color", "sigma", "alpha", "task", "scale") if getattr(args, k) is not None})
    release(args.run, args.name or args.run.name, card, fp16=args.fp16)


if __name__ == "__main__":
    main()
