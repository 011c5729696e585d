"""restore: image restoration behind one degradation-operator interface.

>>> import restore
>>> den = restore.load("lidia")
>>> result = den.restore(y, restore.operators.Denoise(sigma=25 / 255))
>>> clean = restore.Pipeline(den, restore.operators.Denoise(sigma=25 / 255), tile=512, overlap=64)(y)
>>> report = restore.run("photos/**/*.png", task="denoise", model="lidia", sigma=25, out_dir="out/")
"""
from __future__ import annotations

from restore import operators, tuners
from restore.batch import run
from restore.batch_report import BatchReport
from restore.errors import RestoreError
from restore.pipeline import Pipeline
from restore.restorers import Restoration, Restorer, available, load, names_for_task

__version__ = "0.1.0"
__all__ = ["operators", "tuners", "BatchReport", "Pipeline", "RestoreError", "Restoration", "Restorer", "available", "load",
           "names_for_task", "run"]
