"""Which devices a run may use: checked up front, before any work."""
from __future__ import annotations

import torch

from restore.errors import RestoreError


def check_device(device: str | torch.device) -> torch.device:
    """The device ``device`` names, refused with one line when torch cannot use it here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise RestoreError(f"unknown device '{device}' (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RestoreError(f"device '{device}' requested but no CUDA GPU is available here")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RestoreError(f"device '{device}' requested but this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return dev
