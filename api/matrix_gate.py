"""At most a few demand matrices parsed and stored at once in one API process (decision 0707).

A matrix upload allocates up to ``MAX_CELLS`` x 8 bytes of tables and as much again for its
blob; two such uploads at once must not add up. A request waits for a slot without holding a
worker thread (it polls from the event loop), and after `wait_s` it is refused with a 503 and
``Retry-After`` instead of queueing without bound.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator

import anyio

from api.problems import ApiProblem


class MatrixGate:
    """`slots` matrix uploads at a time in this process; others wait up to `wait_s`."""

    def __init__(self, slots: int = 1, wait_s: float = 30.0, retry_after_s: int = 10,
                 poll_s: float = 0.05) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self.wait_s, self.retry_after_s, self.poll_s = wait_s, retry_after_s, poll_s

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Hold a slot for the body of the ``async with``; 503 when none frees in time.

        Run the parse with ``run_in_threadpool`` inside it: anyio waits for the thread to
        finish even when the request is cancelled, so the slot is released only once the
        matrix is out of memory."""
        deadline = time.monotonic() + self.wait_s
        while not self._slots.acquire(blocking=False):
            if time.monotonic() >= deadline:
                raise ApiProblem(
                    503, "Service busy",
                    f"another demand matrix is being read; none could start within "
                    f"{self.wait_s:g} s. Retry after {self.retry_after_s} s",
                    {"Retry-After": str(self.retry_after_s)})
            await anyio.sleep(self.poll_s)
        try:
            yield
        finally:
            self._slots.release()
