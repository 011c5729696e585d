"""Where and how a benchmark ran: commit, machine, package versions (written into every report)."""
from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
import torch

# The checkout this package was imported from (an installed wheel has none: commit "unknown").
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    """Short HEAD hash, with '-uncommitted' when the work tree differs from it."""
    try:
        git = {"cwd": SOURCE_ROOT, "capture_output": True, "text": True, "check": True}
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **git)
        dirty = subprocess.run(["git", "status", "--porcelain"], **git)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-uncommitted" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def now_utc() -> str:
    """The date and time in ISO form, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def machine_info(device: str) -> dict:
    """The facts a reader needs to compare timings."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "opencv_threads": cv2.getNumThreads(),
        "device": device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "bm3d": package_version("bm3d"),
        "restore": package_version("restore"),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def timing_machine(info: dict) -> str:
    """What a timing was measured on, in one line: "Intel(R) Xeon(R) Processor, 2 cores, 2 torch threads"."""
    where = f"{info['cpu']}, {info['cores']} cores, {info['torch_threads']} torch threads"
    return where + (f", {info['gpu']}" if "gpu" in info else "")
