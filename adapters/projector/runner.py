"""One projection's batches: one transaction each, exactly once, with its tracking."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg2.extras import execute_values
from sqlalchemy import Engine

from adapters.projector.base import (
    APPLY_ERRORS,
    CRASHED,
    LIVE_SCHEMA,
    STOPPED,
    WRITE_ERRORS,
    Connection,
    Record,
    advisory_key,
    printable,
    transactional,
)
from adapters.projector.rows import PhysicalTable, RowBuffer, column_types
from projections.base import Event, Projection, Put

log = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    """What one batch did for one projection."""

    applied: int = 0
    duplicates: int = 0
    errors: int = 0
    reseek: dict[tuple[str, int], int] = field(default_factory=dict)
    stopped: str | None = None
    written: dict[str, int] = field(default_factory=dict)  # rows per table


class ProjectionRunner:
    """Applies batches of records to one projection, exactly once, in its tables.

    `tracking_name` keys its tracking, versions, errors and status rows; `schema` is where
    its tables are (the live schema, or a rebuild schema)."""

    def __init__(self, engine: Engine, projection: Projection, tracking_name: str | None = None,
                 schema: str = LIVE_SCHEMA) -> None:
        self.engine = engine
        self.projection = projection
        self.tracking_name = tracking_name or projection.name
        self.schema = schema
        self._tables: dict[str, PhysicalTable] | None = None
        self.stopped = False

    @property
    def name(self) -> str:
        return self.projection.name

    def tracked_offsets(self, topic: str) -> dict[int, int]:
        """Partition → next offset to apply, as recorded."""
        with self._connection() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT partition, next_offset FROM projection_tracking "
                           "WHERE projection = %s AND topic = %s", (self.tracking_name, topic))
            return {int(p): int(o) for p, o in cursor.fetchall()}

    def load_stopped(self) -> bool:
        """Whether this projection was stopped by an error (it stays stopped until rebuilt)."""
        with self._connection() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT state FROM projection_status WHERE projection = %s",
                           (self.tracking_name,))
            row = cursor.fetchone()
        self.stopped = bool(row and row[0] == STOPPED)
        return self.stopped

    def mark_running(self) -> None:
        """Clear a `crashed` state (the projector runs again) and load a `stopped` one."""
        with self._connection() as connection, connection.cursor() as cursor:
            cursor.execute("DELETE FROM projection_status WHERE projection = %s AND state = %s",
                           (self.tracking_name, CRASHED))
        self.load_stopped()

    def mark_crashed(self, failure: str) -> None:
        """Record that the projector died (unless a stop by the error policy is recorded)."""
        with self._connection() as connection, connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO projection_status (projection, state, last_error, updated_at) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT (projection) DO UPDATE SET "
                "state = EXCLUDED.state, last_error = EXCLUDED.last_error, "
                "updated_at = EXCLUDED.updated_at WHERE projection_status.state <> %s",
                (self.tracking_name, CRASHED, printable(failure)[:4000], STOPPED))

    def process(self, records: Sequence[Record], highwaters: Mapping[tuple[str, int], int]
                | None = None, track: bool = True) -> BatchOutcome:
        """Apply a batch in one transaction (see the package docstring)."""
        outcome = BatchOutcome()
        if self.stopped and self.load_stopped():  # a rebuild clears the stop
            return outcome
        if not records:
            return outcome
        connection: Any = transactional(self.engine)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)",
                               (advisory_key(self.tracking_name),))
                tables = self.physical_tables(cursor)
                todo, next_offsets = self._unapplied(cursor, records, outcome, track)
                done = self._write_batch(cursor, tables, todo, outcome)
                for record in done:
                    next_offsets[(record.topic, record.partition)] = record.offset + 1
                if track:
                    self.save_tracking(cursor, next_offsets, highwaters or {})
                if outcome.stopped is not None:
                    self.save_status(cursor, STOPPED, outcome.stopped)
            connection.commit()
        finally:
            connection.close()
        if outcome.stopped is not None:
            self.stopped = True
            log.error("projection %s stopped: %s", self.name, outcome.stopped)
        return outcome

    def _unapplied(self, cursor: Any, records: Sequence[Record], outcome: BatchOutcome,
                   track: bool) -> tuple[list[Record], dict[tuple[str, int], int]]:
        ordered = sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
        if not track:
            return ordered, {}
        topics = sorted({r.topic for r in ordered})
        cursor.execute("SELECT topic, partition, next_offset FROM projection_tracking "
                       "WHERE projection = %s AND topic = ANY(%s)", (self.tracking_name, topics))
        tracked = {(t, int(p)): int(o) for t, p, o in cursor.fetchall()}
        first: dict[tuple[str, int], int] = {}
        for record in ordered:
            first.setdefault((record.topic, record.partition), record.offset)
        for tp, offset in first.items():
            if tp in tracked and offset > tracked[tp]:
                outcome.reseek[tp] = tracked[tp]  # never leave a gap: go back instead
        todo = [r for r in ordered if (r.topic, r.partition) not in outcome.reseek
                and r.offset >= tracked.get((r.topic, r.partition), -1)]
        return todo, {}

    def _write_batch(self, cursor: Any, tables: Mapping[str, PhysicalTable],
                     todo: list[Record], outcome: BatchOutcome) -> list[Record]:
        """Apply `todo` with its rows coalesced into a few statements. When writing them
        fails, apply it again event by event, each in a savepoint, so that only the event
        whose rows cannot be stored follows the error policy."""
        cursor.execute("SAVEPOINT batch")
        try:
            buffer = RowBuffer(cursor, tables)
            done = self._apply_all(cursor, buffer, todo, outcome, each=False)
            buffer.flush()
        except WRITE_ERRORS as error:
            cursor.execute("ROLLBACK TO SAVEPOINT batch")
            log.warning("projection %s: writing a batch failed (%s); applying it event by "
                        "event", self.name, printable(f"{type(error).__name__}: {error}"))
            outcome.applied = outcome.duplicates = outcome.errors = 0
            outcome.stopped = None
            buffer = RowBuffer(cursor, tables)
            done = self._apply_all(cursor, buffer, todo, outcome, each=True)
            outcome.written = buffer.written
            return done
        cursor.execute("RELEASE SAVEPOINT batch")
        outcome.written = buffer.written
        return done

    def analyze_after(self, written: Mapping[str, int], threshold: int) -> list[str]:
        """ANALYZE each table that one batch wrote at least `threshold` rows to.

        A run's results arrive as one event with a row per link: 28,000 rows at city scale.
        Until autovacuum's next analyze (up to a minute or more later) the planner's
        statistics do not know them, and a results tile was planned as a nested loop that
        took minutes (docs/decisions/0214). Returns the tables analyzed."""
        big = sorted(name for name, rows in written.items() if rows >= threshold)
        if not big:
            return []
        connection: Any = transactional(self.engine)
        try:
            with connection.cursor() as cursor:
                tables = self.physical_tables(cursor)
                for name in big:
                    cursor.execute(f"ANALYZE {tables[name].qualified}")
            connection.commit()
        finally:
            connection.close()
        return big

    def _apply_all(self, cursor: Any, buffer: RowBuffer, todo: list[Record],
                   outcome: BatchOutcome, each: bool) -> list[Record]:
        events = _decoded(todo)
        versions = self._versions(cursor, {e.aggregate_id for _, e, _ in events if e})
        seen: dict[str, tuple[int, int]] = {}
        done: list[Record] = []
        for record, event, problem in events:
            if event is not None:
                known = seen.get(event.aggregate_id, versions.get(event.aggregate_id, (0, 0)))
                if event.aggregate_version <= known[0]:
                    outcome.duplicates += 1
                    done.append(record)
                    continue
                problem = (self.apply_stored(cursor, buffer, event) if each
                           else self.apply_one(buffer, event))
            if problem is not None and self.projection.on_error == "stop":
                outcome.stopped = (f"{record.topic}[{record.partition}]@{record.offset}: "
                                   f"{problem}")
                break
            if problem is not None:
                outcome.errors += 1
                buffer.add([self.error_row(record, event, problem)])
                if each:
                    buffer.flush()
            else:
                outcome.applied += 1
            if event is not None:
                seen[event.aggregate_id] = (event.aggregate_version, event.position)
            done.append(record)
        self.save_versions(cursor, seen)
        return done

    def apply_stored(self, cursor: Any, buffer: RowBuffer, event: Event) -> str | None:
        """Apply one event and write its rows at once, in a savepoint: None when they are
        stored, else the problem (nothing of the event is then written)."""
        cursor.execute("SAVEPOINT event")
        try:
            problem = self.apply_one(buffer, event)
            buffer.flush()
        except WRITE_ERRORS as error:
            cursor.execute("ROLLBACK TO SAVEPOINT event")
            buffer.clear()
            return f"{type(error).__name__}: {error}"
        cursor.execute("RELEASE SAVEPOINT event")
        return problem

    def apply_one(self, buffer: RowBuffer, event: Event) -> str | None:
        if not self.projection.handles(event):
            return None
        try:
            ops = self.projection.apply(event, buffer)
        except APPLY_ERRORS as error:
            return f"{type(error).__name__}: {error}"
        for op in ops:
            if op.table not in buffer.tables:
                return f"{self.name} wrote to {op.table!r}, not one of its tables"
        buffer.add(ops)
        return None

    def error_row(self, record: Record, event: Event | None, problem: str) -> Put:
        return Put("projection_errors", {
            "projection": self.tracking_name, "topic": record.topic,
            "partition": record.partition, "offset": record.offset,
            "tenant_id": event.tenant_id if event else None,
            "aggregate_id": event.aggregate_id if event else None,
            "aggregate_version": event.aggregate_version if event else None,
            "position": event.position if event else None,
            "event_type": event.type if event else None, "error": printable(problem)[:4000],
            "occurred_at": event.occurred_at if event else None})

    def _versions(self, cursor: Any, aggregates: set[str]) -> dict[str, tuple[int, int]]:
        if not aggregates:
            return {}
        cursor.execute("SELECT aggregate_id::text, version, position FROM projection_versions "
                       "WHERE projection = %s AND aggregate_id = ANY(%s::uuid[])",
                       (self.tracking_name, sorted(aggregates)))
        return {a: (int(v), int(p)) for a, v, p in cursor.fetchall()}

    def save_versions(self, cursor: Any, seen: Mapping[str, tuple[int, int]]) -> None:
        if not seen:
            return
        execute_values(
            cursor,
            "INSERT INTO projection_versions (projection, aggregate_id, version, position) "
            "VALUES %s ON CONFLICT (projection, aggregate_id) DO UPDATE SET "
            "version = EXCLUDED.version, position = EXCLUDED.position",
            [(self.tracking_name, a, v, p) for a, (v, p) in seen.items()],
            template="(%s, %s::uuid, %s, %s)", page_size=5000)

    def save_tracking(self, cursor: Any, next_offsets: Mapping[tuple[str, int], int],
                       highwaters: Mapping[tuple[str, int], int]) -> None:
        if not next_offsets:
            return
        execute_values(
            cursor,
            "INSERT INTO projection_tracking (projection, topic, partition, next_offset, "
            "highwater) VALUES %s ON CONFLICT (projection, topic, partition) DO UPDATE SET "
            "next_offset = EXCLUDED.next_offset, "
            "highwater = coalesce(EXCLUDED.highwater, projection_tracking.highwater)",
            [(self.tracking_name, t, p, o, highwaters.get((t, p)))
             for (t, p), o in sorted(next_offsets.items())])

    def save_status(self, cursor: Any, state: str, error: str | None) -> None:
        cursor.execute(
            "INSERT INTO projection_status (projection, state, last_error, updated_at) "
            "VALUES (%s, %s, %s, now()) ON CONFLICT (projection) DO UPDATE SET "
            "state = EXCLUDED.state, last_error = EXCLUDED.last_error, "
            "updated_at = EXCLUDED.updated_at",
            (self.tracking_name, state, None if error is None else printable(error)[:4000]))

    def physical_tables(self, cursor: Any) -> dict[str, PhysicalTable]:
        if self._tables is None:
            tables = {}
            for spec in self.projection.tables:
                qualified = f'"{self.schema}"."{spec.name}"'
                tables[spec.name] = PhysicalTable(spec.name, qualified, spec.key,
                                                  column_types(cursor, qualified))
            errors = "public.projection_errors"
            tables["projection_errors"] = PhysicalTable(
                "projection_errors", errors, ("projection", "topic", "partition", "offset"),
                column_types(cursor, errors))
            self._tables = tables
        return self._tables

    def _connection(self) -> Connection:
        return Connection(self.engine)


def _decoded(todo: Sequence[Record]) -> list[tuple[Record, Event | None, str | None]]:
    """Each record with its event, or with the reason it holds none."""
    events: list[tuple[Record, Event | None, str | None]] = []
    for record in todo:
        try:
            events.append((record, record.decode(), None))
        except ValueError as error:
            events.append((record, None, f"undecodable record: {error}"))
    return events

