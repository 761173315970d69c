"""Rebuild by schema swap: replay the log into fresh tables, then swap them in."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine

from adapters.projector.base import (
    LIVE_SCHEMA,
    WRITE_ERRORS,
    Connection,
    Record,
    advisory_key,
    printable,
    transactional,
)
from adapters.projector.consumer import caught_up
from adapters.projector.ddl import ensure_tables
from adapters.projector.queries import absorbed
from adapters.projector.replay import PipelinedReplay, read_ahead, replay_tuning
from adapters.projector.runner import ProjectionRunner
from projections.base import Event, Projection

log = logging.getLogger(__name__)


Progress = Callable[[int, int], None]


def rebuild_name(projection: str) -> str:
    """The tracking name of a projection while it is being rebuilt."""
    return f"{projection}~rebuild"


def rebuild_schema(projection: str) -> str:
    """The schema a projection is rebuilt in."""
    return "rebuild_" + "".join(c if c.isalnum() else "_" for c in projection.lower())


class RebuildRunning(RuntimeError):
    """Another rebuild of the same projection holds its rebuild lock."""


@dataclass
class Rebuild:
    """Replays the whole log into fresh tables of one projection, then swaps them in.

    Live reads keep using the current tables until the swap, which renames in one
    transaction; readers blocked on it continue on the new tables."""

    engine: Engine
    projection: Projection
    table_ddl: Callable[[str, str], list[str]]
    batch_size: int = 5000

    def __post_init__(self) -> None:
        self.schema = rebuild_schema(self.projection.name)
        self.runner = ProjectionRunner(self.engine, self.projection,
                                       rebuild_name(self.projection.name), self.schema)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the projection's rebuild lock (a PostgreSQL session lock, released if this
        process dies); RebuildRunning when another rebuild of it holds the lock."""
        connection: Any = transactional(self.engine)
        connection.driver_connection.autocommit = True
        key = advisory_key(f"rebuild:{self.projection.name}")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                if not cursor.fetchone()[0]:
                    raise RebuildRunning(f"a rebuild of {self.projection.name} is already "
                                         "running; try again when it has finished")
            try:
                yield
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            connection.close()

    def prepare(self) -> None:
        """Empty rebuild tables and no rebuild bookkeeping."""
        ensure_tables(self.engine, [self.projection])
        name = rebuild_name(self.projection.name)
        with Connection(self.engine) as connection, connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            cursor.execute(f'CREATE SCHEMA "{self.schema}"')
            for spec in self.projection.tables:
                for statement in self.table_ddl(spec.name, self.schema):
                    cursor.execute(statement)
            for table in ("projection_tracking", "projection_versions", "projection_errors",
                          "projection_status"):
                cursor.execute(f"DELETE FROM {table} WHERE projection = %s", (name,))
        self.runner = ProjectionRunner(self.engine, self.projection, name, self.schema)

    def discard(self) -> None:
        """Drop the rebuild tables and their bookkeeping (a rebuild used only to compare)."""
        name = rebuild_name(self.projection.name)
        with Connection(self.engine) as connection, connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            for table in ("projection_tracking", "projection_versions", "projection_errors",
                          "projection_status"):
                cursor.execute(f"DELETE FROM {table} WHERE projection = %s", (name,))

    def replay_topic(self, consumer: KafkaConsumer, topic: str,
                     progress: Progress | None = None) -> int:
        """Apply every record of `topic` from offset zero up to its current end."""
        partitions = sorted(consumer.partitions_for_topic(topic) or set())
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        with replay_tuning():
            return self._replay_assigned(consumer, topic, assigned, progress)

    def _replay_assigned(self, consumer: KafkaConsumer, topic: str,
                         assigned: list[TopicPartition], progress: Progress | None) -> int:
        applied = 0
        while True:
            polled = consumer.poll(timeout_ms=500, max_records=self.batch_size)
            records = [Record(tp.topic, tp.partition, r.offset, r.value)
                       for tp, batch in polled.items() for r in batch]
            highwaters = {(topic, tp.partition): int(consumer.highwater(tp) or 0)
                          for tp in assigned}
            outcome = self.runner.process(records, highwaters)
            if outcome.reseek:
                raise RuntimeError(f"rebuild of {self.projection.name}: tracking moved under it")
            applied += len(records)
            if progress is not None:
                progress(sum(consumer.position(tp) for tp in assigned), sum(highwaters.values()))
            if caught_up(consumer, assigned):
                # Empty partitions get a tracking row too: the live projector starts there.
                self.track_from(topic, {tp.partition: consumer.position(tp) for tp in assigned})
                return applied

    def replay_store(self, batches: Callable[[], Iterable[list[Event]]], total: int,
                     progress: Progress | None = None) -> int:
        """Apply stored events, in notification order, batch after batch.

        `batches` opens a read of the store from its start. The store holds each
        (aggregate id, version) once, so nothing needs de-duplicating. The replay is
        pipelined (`PipelinedReplay`); when one of its coalesced writes fails (an event
        whose rows PostgreSQL cannot store), the rebuild tables are emptied and the store
        replayed again batch by batch, each falling back to event by event, so that event
        follows the error policy as it does in the live projector.
        """
        try:
            return self._replay_pipelined(batches(), total, progress)
        except WRITE_ERRORS as error:
            log.warning("rebuild of %s: a coalesced write failed (%s); replaying again, "
                        "isolating the events that cannot be stored", self.projection.name,
                        printable(f"{type(error).__name__}: {error}"))
        self.prepare()
        return self._replay_isolated(batches(), total, progress)

    def _replay_pipelined(self, batches: Iterable[list[Event]], total: int,
                          progress: Progress | None) -> int:
        """A reading thread fetches batch N+2 and its blobs, the caller's thread projects
        batch N+1, reading rows of batch N from its buffer and older rows from the
        database, while writer threads write batch N. Batches commit in order; the rebuild
        is swapped in only after the last commit."""
        replay = PipelinedReplay(self.runner)
        applied = 0
        with replay_tuning():
            try:
                for events, blobs in read_ahead(batches, replay.fetch_blobs):
                    if not replay.apply(events, blobs):
                        break
                    applied += len(events)
                    if progress is not None and events:
                        progress(events[-1].position, total)
            finally:
                replay.finish()
        return applied

    def _replay_isolated(self, batches: Iterable[list[Event]], total: int,
                         progress: Progress | None) -> int:
        """Each batch in one transaction of the runner (which isolates a failed write)."""
        applied = 0
        for events in batches:
            self.runner.process([Record("store", 0, e.position, event=e) for e in events],
                                track=False)
            if self.runner.stopped:
                break
            applied += len(events)
            if progress is not None and events:
                progress(events[-1].position, total)
        return applied

    def live_offsets(self, topic: str) -> dict[int, int]:
        """Partition → next offset the live projection will apply, as tracked now."""
        return ProjectionRunner(self.engine, self.projection).tracked_offsets(topic)

    def track_from(self, topic: str, offsets: Mapping[int, int],
                   highwaters: Mapping[int, int] | None = None) -> None:
        """After a replay from the store: the live consumer re-reads the topic from these
        offsets and de-duplicates what the store already gave. With `highwaters` (each
        partition's end), the tracking's lag is right before the live projector polls."""
        ends = {(topic, p): h for p, h in (highwaters or {}).items()}
        with Connection(self.engine) as connection, connection.cursor() as cursor:
            self.runner.save_tracking(cursor, {(topic, p): o for p, o in offsets.items()}, ends)

    def absorbed(self, position: int) -> bool:
        """Whether the rebuilt tables hold every stored event up to `position`."""
        return absorbed(self.engine, rebuild_name(self.projection.name), position)

    def swap(self) -> None:
        """Put the rebuilt tables and bookkeeping in place of the live ones, atomically."""
        live, name = self.projection.name, rebuild_name(self.projection.name)
        tables = [spec.name for spec in self.projection.tables]
        # Fresh tables have no planner statistics until autovacuum gets to them; without
        # them a tile of a large run was planned as a nested loop over every pair of rows.
        with Connection(self.engine) as connection, connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f'ANALYZE "{self.schema}"."{table}"')
        with Connection(self.engine) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(live),))
            views = _dependent_views(cursor, tables)
            for view in views:
                cursor.execute(f'DROP VIEW IF EXISTS "{view}"')
            for table in tables:
                cursor.execute(f'DROP TABLE IF EXISTS "{LIVE_SCHEMA}"."{table}"')
                cursor.execute(f'ALTER TABLE "{self.schema}"."{table}" SET SCHEMA {LIVE_SCHEMA}')
            for view, definition in views.items():
                cursor.execute(f'CREATE VIEW "{view}" AS {definition}')
            for table in ("projection_tracking", "projection_versions", "projection_errors",
                          "projection_status"):
                cursor.execute(f"DELETE FROM {table} WHERE projection = %s", (live,))
                cursor.execute(f"UPDATE {table} SET projection = %s WHERE projection = %s",
                               (live, name))
            cursor.execute(f'DROP SCHEMA "{self.schema}"')


def _dependent_views(cursor: Any, tables: Sequence[str]) -> dict[str, str]:
    """Views in the live schema over any of these tables, with their definitions."""
    cursor.execute(
        "SELECT DISTINCT v.relname, pg_get_viewdef(v.oid) FROM pg_depend d "
        "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
        "JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = %s AND t.relname = ANY(%s) AND v.oid <> t.oid ORDER BY 1",
        (LIVE_SCHEMA, list(tables)))
    return {name: definition.rstrip().rstrip(";") for name, definition in cursor.fetchall()}

