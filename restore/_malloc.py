"""Keep glibc from returning large blocks to the OS after every tensor is freed.

The LIDIA forward allocates and frees tensors of hundreds of MB per chunk;
by default glibc serves each by mmap and unmaps it on free, so every chunk
pays page faults for the whole tensor again. Raising the mmap and trim
thresholds lets freed memory be reused. No-op where glibc is absent.
"""
from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Ask glibc to reuse freed blocks up to ``limit_bytes``; True if it could."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(min(limit_bytes, 2**31 - 1)))
        libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(2**31 - 1))
        return bool(ok)
    except (OSError, AttributeError):
        return False
