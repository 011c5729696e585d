"""restore: image restoration behind one degradation-operator interface.

>>> import restore
>>> den = restore.load("lidia")
>>> result = den.restore(y, restore.operators.Denoise(sigma=25 / 255))
>>> clean = restore.Pipeline(den, restore.operators.Denoise(sigma=25 / 255), tile=512, overlap=64)(y)
>>> report = restore.run("photos/**/*.png", task="denoise", model="lidia", sigma=25 / 255, out_dir="out/")

Names are imported on first use (PEP 562), so that ``import restore.nets.lidia``
or the command line's ``--help`` loads only what it needs.
"""
from __future__ import annotations

import importlib
from typing import Any

from restore.errors import RestoreError

__version__ = "0.1.0"

# Public name -> the module that defines it.
_LAZY = {
    "operators": "restore.operators",
    "tuners": "restore.tuners",
    "tasks": "restore.tasks",
    "run": "restore.batch",
    "BatchReport": "restore.batch_report",
    "Pipeline": "restore.pipeline",
    "Restoration": "restore.restorers",
    "Restorer": "restore.restorers",
    "available": "restore.restorers",
    "load": "restore.restorers",
    "names_for_task": "restore.restorers",
}
__all__ = ["RestoreError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'restore' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if module.__name__ == f"restore.{name}" else getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
