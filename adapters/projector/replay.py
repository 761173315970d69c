"""Replay tuning: read-ahead thread, pipelined writers, prefetched blobs."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import gc
import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from adapters.projector.base import Record, transactional
from adapters.projector.copytext import COPY_ESCAPES, copy_in
from adapters.projector.rows import CursorView, KeyLedger, RowBuffer
from adapters.projector.runner import ProjectionRunner
from domain.ports import BlobStore
from projections.base import Context, Event

log = logging.getLogger(__name__)


@contextlib.contextmanager
def replay_tuning() -> Iterator[None]:
    """Tuning for a replay, undone afterwards.

    - No cyclic garbage collection: a replay's millions of short-lived, acyclic objects
      would trigger a collection every few hundred events (about a third of the time).
      Cycles made meanwhile are collected once collection resumes.
    - A 0.5 ms GIL switch interval instead of 5 ms: the writer thread needs the GIL back
      after every statement PostgreSQL has finished, while the projecting thread holds it.
    """
    enabled = gc.isenabled()
    interval = sys.getswitchinterval()
    gc.disable()
    sys.setswitchinterval(min(interval, 0.0005))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if enabled:
            gc.enable()


_DONE = object()


def read_ahead(batches: Iterable[list[Event]],
                fetch_blobs: Callable[[Sequence[Event]], dict[tuple[str, str], bytes]],
                depth: int = 1) -> Iterator[tuple[list[Event], dict[tuple[str, str], bytes]]]:
    """Batches and their blobs, read by a thread of their own `depth` batches ahead: its
    waits on PostgreSQL overlap the caller's work. Errors surface in the caller."""
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for events in batches:
                item = (events, fetch_blobs(events))
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_DONE)
        except BaseException as error:  # handed to the caller, raised there
            ready.put(error)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # a generator's cursor and connection

    reader = threading.Thread(target=read, name="replay-read", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting to put
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.1)
        reader.join()


class _PrefetchedBlobs:
    """The blob store, plus the claim-checked blobs of the current batch fetched in one
    query: every payload field named `*_sha256` (docs/events.md) of the batch's events."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.batch: dict[tuple[str, str], bytes] = {}

    def fetch(self, events: Sequence[Event]) -> dict[tuple[str, str], bytes]:
        """The batch's claim-checked blobs (any thread may call this)."""
        get_many = getattr(self.inner, "get_many", None)
        if get_many is None:
            return {}
        wanted = {(e.tenant_id, v) for e in events for k, v in e.payload.items()
                  if k.endswith("_sha256") and isinstance(v, str)}
        found: dict[tuple[str, str], bytes] = get_many(wanted)
        return found

    def put(self, tenant_id: str, content: bytes) -> str:
        return self.inner.put(tenant_id, content)

    def get(self, tenant_id: str, sha256: str) -> bytes:
        found = self.batch.get((tenant_id, sha256))
        return found if found is not None else self.inner.get(tenant_id, sha256)


class PipelinedReplay:
    """Projects batches on the caller's thread and writes each on `writers` connections.

    The tables of a batch are shared out between the writers, so PostgreSQL inserts into
    several of them at once; the next batch is handed over only once every part of this
    one committed. A store replay restarts from zero, so a batch need not be atomic, and
    nothing else writes the rebuild's tables (`Rebuild.exclusive`)."""

    def __init__(self, runner: ProjectionRunner, rows_per_write: int = 20_000,
                 writers: int = 2) -> None:
        self.runner = runner
        self.rows_per_write = rows_per_write
        self.reader: Any = transactional(runner.engine)
        self.reader.driver_connection.autocommit = True
        self.reader_cursor = self.reader.cursor()
        self.tables = runner.physical_tables(self.reader_cursor)
        self.stored = CursorView(self.reader_cursor, self.tables)
        self.writers = writers
        self.pool = concurrent.futures.ThreadPoolExecutor(writers,
                                                          thread_name_prefix="replay-write")
        self.in_flight: list[concurrent.futures.Future[None]] = []
        self.previous: RowBuffer | None = None
        # The replay's tables, and its rows of projection_versions, start empty (prepare()).
        self.ledger = KeyLedger([*(spec.name for spec in runner.projection.tables),
                                 "projection_versions"])
        projection = runner.projection
        found = getattr(projection, "context", None)
        self.context = found if isinstance(found, Context) else None
        self.blobs: _PrefetchedBlobs | None = None
        if self.context is not None:
            self.blobs = _PrefetchedBlobs(self.context.blobs)
            projection.context = dataclasses.replace(self.context, blobs=self.blobs)

    def fetch_blobs(self, events: Sequence[Event]) -> dict[tuple[str, str], bytes]:
        """The blobs `apply` will want for these events (called by the reading thread)."""
        return {} if self.blobs is None else self.blobs.fetch(events)

    def apply(self, events: Sequence[Event], blobs: dict[tuple[str, str], bytes]) -> bool:
        """Project events, handing a buffer to the writer every `rows_per_write` row
        operations; False once the projection stopped."""
        runner = self.runner
        if self.blobs is not None:
            self.blobs.batch = blobs
        buffer = self._buffer()
        seen: dict[str, tuple[int, int]] = {}
        for event in events:
            problem = runner.apply_one(buffer, event)
            if problem is not None:
                if runner.projection.on_error == "stop":
                    self._hand_over(buffer, seen, f"store@{event.position}: {problem}")
                    return False
                record = Record("store", 0, event.position, event=event)
                buffer.add([runner.error_row(record, event, problem)])
            seen[event.aggregate_id] = (event.aggregate_version, event.position)
            if buffer.operations >= self.rows_per_write:
                self._hand_over(buffer, seen, None)
                buffer, seen = self._buffer(), {}
        self._hand_over(buffer, seen, None)
        return True

    def _buffer(self) -> RowBuffer:
        return RowBuffer(None, self.tables, self.previous or self.stored, self.ledger)

    def _hand_over(self, buffer: RowBuffer, seen: dict[str, tuple[int, int]],
                   stopped: str | None) -> None:
        """Write `buffer` once the previous write committed (batches commit in order)."""
        self._wait()
        if self.previous is not None:
            self.previous.below = self.stored  # its predecessor is committed now
        parts = _share_out(buffer, self.writers)
        self.in_flight = [self.pool.submit(self._write, buffer, part, seen if i == 0 else {},
                                           stopped if i == 0 else None)
                          for i, part in enumerate(parts)]
        self.previous = buffer
        if stopped is not None:
            self._wait()
            self.runner.stopped = True
            log.error("projection %s stopped: %s", self.runner.name, stopped)

    def _write(self, buffer: RowBuffer, tables: list[str],
               seen: Mapping[str, tuple[int, int]], stopped: str | None) -> None:
        runner = self.runner
        connection: Any = transactional(runner.engine)
        try:
            with connection.cursor() as cursor:
                buffer.flush(cursor, clear=False, only=tables)
                self._save_versions(cursor, seen)
                if stopped is not None:
                    runner.save_status(cursor, "stopped", stopped)
            connection.commit()
        finally:
            connection.close()

    def _save_versions(self, cursor: Any, seen: Mapping[str, tuple[int, int]]) -> None:
        """Versions of aggregates new to the replay are COPYed, the others upserted."""
        claim, name = self.ledger.claim, self.runner.tracking_name
        fresh = {a: vp for a, vp in seen.items() if claim("projection_versions", (a,))}
        if fresh:
            label = name.translate(COPY_ESCAPES)
            text_rows = "".join(f"{label}\t{a}\t{v}\t{p}\n" for a, (v, p) in fresh.items())
            copy_in(cursor, "COPY projection_versions (projection, aggregate_id, version, "
                    "position) FROM STDIN", text_rows)
        self.runner.save_versions(cursor, {a: vp for a, vp in seen.items() if a not in fresh})

    def _wait(self) -> None:
        in_flight, self.in_flight = self.in_flight, []
        concurrent.futures.wait(in_flight)
        for future in in_flight:
            future.result()  # a failed write fails the replay

    def finish(self) -> None:
        """Wait for the last write and release the connections."""
        try:
            self._wait()
        finally:
            if self.context is not None:
                self.runner.projection.context = self.context
            self.pool.shutdown(wait=True)
            self.reader_cursor.close()
            self.reader.close()


def _share_out(buffer: RowBuffer, parts: int) -> list[list[str]]:
    """The buffer's non-empty tables in `parts` groups of about the same number of rows."""
    shares: list[tuple[int, list[str]]] = [(0, []) for _ in range(parts)]
    for name, entries in sorted(buffer.pending.items(), key=lambda t: -len(t[1])):
        if entries:
            load, names = min(shares, key=lambda share: share[0])
            shares.remove((load, names))
            shares.append((load + len(entries), [*names, name]))
    found = [names for _, names in shares if names]
    return found or [[]]

