"""Tuners: wrappers that move a restorer's outputs along the perception/distortion trade-off.

>>> from restore.tuners import DeepOT
>>> tuner = DeepOT.calibrate(restore.load("lidia"), Denoise(25 / 255), noisy, clean)  # doctest: +SKIP
>>> tuner.save("lidia-s25.dot")  # doctest: +SKIP
"""
from __future__ import annotations

from restore.tuners.calibration import Calibration, load_calibration, save_calibration
from restore.tuners.calibration_options import CalibrationOptions
from restore.tuners.deep_ot import DeepOT
from restore.tuners.gaussian_ot import GaussianMap, GaussianStats, gelbrich_distance
from restore.tuners.latent_stats import latent_w2

__all__ = ["Calibration", "CalibrationOptions", "DeepOT", "GaussianMap", "GaussianStats", "gelbrich_distance", "latent_w2",
           "load_calibration", "save_calibration"]
