"""The restorers, registered by name on import."""
from __future__ import annotations

from restore.restorers import bicubic, lidia, nlm, onestep_sr, rddm, reddiff, vble, vble_xz  # noqa: F401  (registration side effects)
from restore.restorers.base import Restoration, Restorer, available, load, names_for_task, register

__all__ = ["Restoration", "Restorer", "available", "load", "names_for_task", "register"]
