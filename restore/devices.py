"""Which devices a run may use: checked up front, before any work.

``"auto"`` (the default everywhere a device is taken) picks CUDA when torch
sees a GPU, then Apple's MPS, then the CPU, so that a GPU owner does not run on
the CPU without knowing. ``auto_device`` also says why it chose, for the
command line to print once.
"""
from __future__ import annotations

import torch

from restore.errors import RestoreError

AUTO = "auto"
DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"


def mps_available() -> bool:
    """Whether Apple's Metal backend can run here (absent from some torch builds)."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def auto_device() -> tuple[torch.device, str]:
    """The device ``"auto"`` resolves to here, and why (e.g. ``"auto: no CUDA or MPS"``)."""
    if torch.cuda.is_available():
        return torch.device("cuda"), f"auto: CUDA, {torch.cuda.device_count()} GPU(s)"
    if mps_available():
        return torch.device("mps"), "auto: Apple MPS, no CUDA"
    return torch.device("cpu"), "auto: no CUDA or MPS"


def check_device(device: str | torch.device) -> torch.device:
    """The device ``device`` names (``"auto"`` resolved), refused with one line when torch cannot use it here."""
    if isinstance(device, str) and device.strip().lower() == AUTO:
        return auto_device()[0]
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise RestoreError(f"unknown device '{device}' (use {DEVICE_HELP})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RestoreError(f"device '{device}' requested but no CUDA GPU is available here")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RestoreError(f"device '{device}' requested but this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not mps_available():
        raise RestoreError(f"device '{device}' requested but Apple MPS is not available here")
    return dev
