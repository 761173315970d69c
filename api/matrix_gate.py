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
from collections.abc import AsyncIterator, Callable, Iterator

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
        await _wait_for(lambda: self._slots.acquire(blocking=False), self.wait_s, self.poll_s,
                        "another demand matrix is being read", self.retry_after_s)
        try:
            yield
        finally:
            self._slots.release()


async def _wait_for(enter: Callable[[], bool], wait_s: float, poll_s: float, busy: str,
                    retry_after_s: int) -> None:
    """Poll `enter` from the event loop (no worker thread held) until it lets the request in;
    503 with Retry-After when it has not within `wait_s`."""
    deadline = time.monotonic() + wait_s
    while not enter():
        if time.monotonic() >= deadline:
            raise ApiProblem(
                503, "Service busy",
                f"{busy}; none could start within {wait_s:g} s. Retry after {retry_after_s} s",
                {"Retry-After": str(retry_after_s)})
        await anyio.sleep(poll_s)


class TenantTurns:
    """`slots` heavy requests at once in this process, one per tenant; the others wait up to
    `wait_s` without holding a worker thread, then 503 with Retry-After. A tenant that sends
    many at once waits for its own turn and leaves the other slots to the other tenants."""

    def __init__(self, busy: str, slots: int = 2, wait_s: float = 30.0,
                 retry_after_s: int = 10, poll_s: float = 0.05) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._inside: set[str] = set()
        self.busy = busy
        self.wait_s, self.retry_after_s, self.poll_s = wait_s, retry_after_s, poll_s

    @contextlib.asynccontextmanager
    async def turn(self, tenant: str) -> AsyncIterator[None]:
        """Hold a slot, and the tenant's turn, for the body of the ``async with``."""
        await _wait_for(lambda: self._enter(tenant), self.wait_s, self.poll_s, self.busy,
                        self.retry_after_s)
        try:
            yield
        finally:
            with self._lock:
                self._inside.discard(tenant)
            self._slots.release()

    def _enter(self, tenant: str) -> bool:
        with self._lock:
            if tenant in self._inside:
                return False
            if not self._slots.acquire(blocking=False):
                return False
            self._inside.add(tenant)
            return True


class DownloadGate:
    """Matrix downloads (demand, skims, select-link) in this process (decision 0708).

    A download holds its blob (up to CARTOLOG_BLOB_MAX_BYTES) and, for OMX, a file as large
    again while it is built, then its body while it streams. So at most `slots` are built at
    once, one per tenant, each waiting up to `wait_s` (then 503, as for uploads); and a tenant
    streams at most `streams_per_tenant` at once (429 past that). One tenant asking for many
    big downloads at once cannot exhaust the API's memory for every other tenant."""

    def __init__(self, slots: int = 2, streams_per_tenant: int = 2, wait_s: float = 30.0,
                 retry_after_s: int = 10, poll_s: float = 0.05) -> None:
        self._turns = TenantTurns("other matrix downloads are being prepared", slots, wait_s,
                                  retry_after_s, poll_s)
        self._lock = threading.Lock()
        self._streams: dict[str, int] = {}
        self.streams_per_tenant = streams_per_tenant
        self.retry_after_s = retry_after_s

    def open_stream(self, tenant: str) -> Stream:
        """Count a download of `tenant` until its `Stream` closes; 429 past the cap."""
        with self._lock:
            if self._streams.get(tenant, 0) >= self.streams_per_tenant:
                raise ApiProblem(
                    429, "Too many downloads",
                    f"{self.streams_per_tenant} matrix downloads of this tenant are under way; "
                    f"retry once one has finished",
                    {"Retry-After": str(self.retry_after_s)})
            self._streams[tenant] = self._streams.get(tenant, 0) + 1
        return Stream(self, tenant)

    def _close(self, tenant: str) -> None:
        with self._lock:
            left = self._streams.get(tenant, 0) - 1
            if left > 0:
                self._streams[tenant] = left
            else:
                self._streams.pop(tenant, None)

    def building(self, tenant: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold a slot, and the tenant's turn, while a download's body is built."""
        return self._turns.turn(tenant)


class Stream:
    """One counted download, released once: when its body has been sent, when the body is
    dropped unsent (a client gone before the first chunk), or by `close` on an error before."""

    def __init__(self, gate: DownloadGate, tenant: str) -> None:
        self.gate, self.tenant, self._open = gate, tenant, True
        self._parts: Iterator[bytes | str] = iter(())

    def close(self) -> None:
        if self._open:
            self._open = False
            self.gate._close(self.tenant)

    def body(self, parts: Iterator[bytes | str]) -> Stream:
        self._parts = parts
        return self

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> bytes | str:
        try:
            return next(self._parts)
        except BaseException:  # the end, or a failure while streaming
            self.close()
            raise

    def __del__(self) -> None:
        self.close()
