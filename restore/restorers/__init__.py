"""The restorers, registered by name on import.

Every module of this package is imported here, so that a restorer's
``@register`` runs: adding a restorer is adding its file (CONTRIBUTING.md).
"""
from __future__ import annotations

import importlib
import pkgutil

from restore.restorers.base import Restoration, Restorer, available, load, names_for_task, register, registered

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["Restoration", "Restorer", "available", "load", "names_for_task", "register", "registered"]
