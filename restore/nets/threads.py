"""Chunk-level parallelism for the nets' many small operations.

Intra-op threading splits each operation across the threads, with a barrier
at its end: for LIDIA's thousands of sub-millisecond operations that costs
more than it gains, and on a loaded machine, where a thread is often not
scheduled, each barrier waits for a time slice (measured: 14x slower on two
threads than on one, 5.6 s instead of 0.17 s for the neighbour-weight MLP).
``map_chunks`` instead hands whole chunks to Python threads, each running its
operations on one intra-op thread (``torch.set_num_threads`` is per thread);
the operations release the GIL, so only their Python-side dispatch is
serialised. Inside ``chunked_threads()`` the calling thread's own operations
run on one intra-op thread too.
"""
from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

import torch

T = TypeVar("T")
_local = threading.local()


@contextlib.contextmanager
def chunked_threads() -> Iterator[int]:
    """Run the calling thread on one intra-op thread; ``map_chunks`` inside uses the threads it had. Yields their number."""
    threads = getattr(_local, "threads", None) or torch.get_num_threads()
    before = torch.get_num_threads()
    _local.threads = threads
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)
        _local.threads = None


def map_chunks(fn: Callable[[T, dict], None], items: Sequence[T], device: torch.device,
               threads: int | None = None) -> list[dict]:
    """Call ``fn(item, state)`` for every item; ``state`` is a dict private to the calling thread
    (buffers, partial sums). Returns the states, in thread order.

    On the CPU, items are dealt round-robin to ``threads`` threads (default: those
    of the enclosing ``chunked_threads``, else ``torch.get_num_threads()``); ``fn``
    must write only its item's part of shared outputs. Grad, inference and autocast
    modes are carried over to the threads (they are thread-local). Other devices
    run the items in order.
    """
    threads = threads or getattr(_local, "threads", None) or torch.get_num_threads()
    n = min(threads, len(items)) if device.type == "cpu" else 1
    if n <= 1:
        state: dict = {}
        for item in items:
            fn(item, state)
        return [state]
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()
    autocast = torch.is_autocast_enabled(device.type)
    dtype = torch.get_autocast_dtype(device.type)

    def run(share: Sequence[T]) -> dict:
        torch.set_num_threads(1)
        state: dict = {}
        with torch.inference_mode(inference), torch.set_grad_enabled(grad), \
                torch.autocast(device.type, dtype=dtype, enabled=autocast):
            for item in share:
                fn(item, state)
        return state

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, [items[i::n] for i in range(n)]))
