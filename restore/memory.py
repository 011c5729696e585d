"""Keep a long streaming run's resident memory flat.

glibc's malloc raises its mmap threshold each time a large block is freed, so
after a few blocks of a raster the big per-block buffers come from the heap,
which fragments and does not shrink: resident memory creeps up with the
number of blocks. Pinning the threshold (and the trim threshold) at 1 MiB
keeps every large buffer in its own mapping, returned to the system on free.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 20


def pin_malloc_thresholds() -> bool:
    """Pin glibc's mmap and trim thresholds; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))
