"""Run a numba kernel over lanes, one Python thread per lane (docs/decisions/0113).

A lane is a share of the origins (origin k in lane k % lanes). Each kernel is a plain
``@njit(nogil=True)`` function taking ``(lane, lanes, *args)``: it releases the GIL, so the
lanes run in parallel like a ``prange`` loop, but it compiles like serial code (numba's parfors
made cold starts several seconds longer) and needs no numba threading layer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child: the parent's lane threads were not copied, start new ones."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def lanes() -> int:
    """Number of lanes: numba's thread count if the process set it (``numba.set_num_threads``
    after starting numba's threading layer), else ``NUMBA_NUM_THREADS`` if set, else the CPUs
    this process may use. The threading layer is never started here."""
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", False):
        return max(1, int(parallel.get_num_threads()))  # type: ignore[no-untyped-call]
    configured = os.environ.get("NUMBA_NUM_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _executor() -> ThreadPoolExecutor:
    """The process's lane threads, started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=lanes(), thread_name_prefix="cartolog-lane")
        return _pool


def run_lanes(kernel: Callable[..., None], count: int, *args: Any) -> None:
    """``kernel(lane, count, *args)`` for every lane in ``0..count-1``, in parallel threads.

    Lane 0 runs in the calling thread. A kernel not compiled yet is compiled once: numba
    serialises compilation under its own lock. Exceptions from any lane are re-raised.
    """
    if count <= 1:
        kernel(0, 1, *args)
        return
    futures = [_executor().submit(kernel, lane, count, *args) for lane in range(1, count)]
    try:
        kernel(0, count, *args)
    finally:
        for future in futures:
            future.result()
