"""restore: image restoration behind one degradation-operator interface.

>>> import restore
>>> den = restore.load("lidia")
>>> result = den.restore(y, restore.operators.Denoise(sigma=25 / 255))
"""
from __future__ import annotations

from restore import operators
from restore.errors import RestoreError
from restore.restorers import Restoration, Restorer, available, load, names_for_task

__version__ = "0.1.0"
__all__ = ["operators", "RestoreError", "Restoration", "Restorer", "available", "load", "names_for_task"]
