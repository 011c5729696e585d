"""How many threads a restorer's many small operations run on (every restorer: Restorer.restore), and the chunk loop.

Intra-op threading splits each operation across the threads, with a barrier
at its end. With idle CPUs that pays (512 x 384 gray: 5.4 s on one thread,
3.6 s on two); on a loaded machine, where a thread is often not scheduled,
each of the thousands of sub-millisecond operations waits a time slice at
its barrier (measured at a load of 5 on 2 CPUs: 5-14x slower on two threads
than on one). ``op_threads`` therefore runs on torch's threads only as far as
CPUs are idle right now, and on one thread otherwise. (Chunks dealt to Python
threads, one intra-op thread each, were tried: robust under load but only
1.08x faster on two idle CPUs, the GIL serialising the operations' dispatch.)
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Callable, Iterator, Sequence, TypeVar

import torch

T = TypeVar("T")
_local = threading.local()


def idle_cpus(samples: int = 3) -> int:
    """CPUs of this process's affinity not running other processes' work now (Linux: /proc).

    Runnable tasks (/proc/stat's procs_running) less this process's own (its
    threads may still spin after their last operation), the least of a few
    readings a millisecond apart so that a burst does not count; the CPU count
    where /proc cannot be read.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    others = None
    try:
        for i in range(samples):
            with open("/proc/stat") as f:
                running = int(next(line for line in f if line.startswith("procs_running")).split()[1])
            n = max(0, running - _own_running())
            others = n if others is None else min(others, n)
            if i + 1 < samples:
                time.sleep(0.001)
    except (OSError, StopIteration, ValueError):
        return cpus
    return max(1, cpus - others)


def _own_running() -> int:
    """This process's threads in state R (running or runnable)."""
    n = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                n += f.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return n


@contextlib.contextmanager
def op_threads() -> Iterator[int]:
    """Run the calling thread's operations on ``min(torch threads, idle CPUs)`` threads; yields that number.

    Nested uses keep the outer choice.
    """
    chosen = getattr(_local, "threads", None)
    if chosen is not None:
        yield chosen
        return
    before = torch.get_num_threads()
    chosen = min(before, idle_cpus()) if before > 1 else 1
    torch.set_num_threads(chosen)
    _local.threads = chosen
    try:
        yield chosen
    finally:
        _local.threads = None
        torch.set_num_threads(before)


def map_chunks(fn: Callable[[T, dict], None], items: Sequence[T]) -> dict:
    """Call ``fn(item, state)`` for every item, in order; ``state`` (buffers, partial sums) is returned."""
    state: dict = {}
    for item in items:
        fn(item, state)
    return state
