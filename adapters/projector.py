"""The projector: applies projections to PostGIS with exactly-once tracking.

One Kafka consumer reads `cartolog.events`; for every polled batch, each projection runs
in ONE PostgreSQL transaction that (1) takes the projection's advisory lock and reads its
tracking (topic, partition → next offset), (2) skips records below that offset and events
whose (aggregate id, version) it already applied, (3) writes the rows of all remaining
events, coalesced per key, (4) advances the tracking. A crash anywhere rolls all of it
back, so a restart resumes from the tracking, never from broker-committed offsets. When a
batch starts beyond the tracked offset (another writer moved it, e.g. a rebuild swapped
in), the consumer is sent back to the tracked offset instead of leaving a gap.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import gc
import hashlib
import io
import json
import logging
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from psycopg2.extras import Json, execute_values
from sqlalchemy import Engine

from domain.ports import BlobStore
from projections.base import (
    Context,
    Delete,
    Event,
    Key,
    Op,
    Patch,
    Projection,
    ProjectionError,
    Put,
    Raise,
    Row,
    View,
)
from projections.jsonparse import loads

log = logging.getLogger(__name__)
LIVE_SCHEMA = "public"
# Errors a projection's apply() may raise on a bad event; they follow its error policy.
APPLY_ERRORS = (ProjectionError, LookupError, TypeError, ValueError, ArithmeticError,
                AttributeError)


@dataclass(frozen=True)
class Record:
    """One message of the events topic (or one stored event, for a replay from the store)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None = None
    event: Event | None = None

    def decode(self) -> Event:
        """The event in this record; ValueError when it is not an envelope."""
        if self.event is not None:
            return self.event
        if self.value is None:
            raise ValueError("empty record")
        try:
            return Event.from_envelope(loads(self.value))
        except (KeyError, TypeError) as error:
            raise ValueError(f"not an event envelope: {error!r}") from error


def advisory_key(projection: str) -> int:
    """The pg_advisory_xact_lock key that serialises writers of one projection."""
    return int.from_bytes(hashlib.sha256(f"projection:{projection}".encode()).digest()[:8],
                          "big", signed=True)


# -- writing rows -----------------------------------------------------------------------------

@dataclass
class PhysicalTable:
    """Where a projection's logical table lives, its key and its column types."""

    name: str
    qualified: str
    key: tuple[str, ...]
    types: dict[str, str]

    def __post_init__(self) -> None:
        getter = itemgetter(*self.key)
        self.key_of: Callable[[Row], Key] = (
            getter if len(self.key) > 1 else lambda row: (getter(row),))

    def cast(self, column: str) -> str:
        return f"%s::{self.types[column]}"


def column_types(cursor: Any, qualified: str) -> dict[str, str]:
    """Writable columns of a table and their SQL types (generated columns excluded)."""
    cursor.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "AND attgenerated = '' ORDER BY attnum", (qualified,))
    return {name: kind for name, kind in cursor.fetchall()}


def _sql_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return Json(value, dumps=lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")))
    return value


COPY_THRESHOLD = 500
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """One value in COPY text format (exact: floats by repr, JSON with sorted keys)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value).translate(_COPY_ESCAPES)


def _copy_float(value: Any) -> str:
    return "\\N" if value is None else repr(float(value))


def _copy_plain(value: Any) -> str:
    return "\\N" if value is None else str(value)


def _copy_time(value: Any) -> str:
    return "\\N" if value is None else value.isoformat()


def _copy_escaped(value: Any) -> str:
    return "\\N" if value is None else str(value).translate(_COPY_ESCAPES)


def _copy_bool(value: Any) -> str:
    return "\\N" if value is None else ("t" if value else "f")


COPY_FORMATS: dict[str, Callable[[Any], str]] = {
    "double precision": _copy_float, "integer": _copy_plain, "bigint": _copy_plain,
    "uuid": _copy_plain, "timestamp with time zone": _copy_time, "text": _copy_escaped,
    "boolean": _copy_bool,
}


def copy_formatter(sql_type: str) -> Callable[[Any], str]:
    """The fastest exact COPY text formatter for a column type (geometry is EWKT text)."""
    if sql_type.startswith("geometry"):
        return _copy_escaped
    return COPY_FORMATS.get(sql_type, _copy_text)


# The same conversions as the _copy_* functions, written inline (VALUE is the value).
# f'{x}' is str(x) and f'{x!r}' is repr(x), without a function call.
_INLINE_FORMATS: dict[Callable[[Any], str], str] = {
    _copy_float: ("N if VALUE is None else (f'{VALUE!r}' if type(VALUE) is float "
                  "else repr(float(VALUE)))"),
    _copy_plain: "N if VALUE is None else f'{VALUE}'",
    _copy_time: "N if VALUE is None else VALUE.isoformat()",
    _copy_escaped: "N if VALUE is None else f'{VALUE}'.translate(T)",
    _copy_bool: "N if VALUE is None else ('t' if VALUE else 'f')",
}
_ROW_FORMATTERS: dict[tuple[tuple[str, str], ...], Callable[[Sequence[Row]], str]] = {}


def rows_formatter(columns: Sequence[tuple[str, str]]) -> Callable[[Sequence[Row]], str]:
    """A function turning rows into COPY text for these (column, SQL type) pairs.

    Generated once per column list, with each column's conversion written inline: the
    per-value calls of a generic loop were most of a replay's write time. The output is
    that of `copy_formatter` column by column (tests/unit/projections/test_copy_text.py)."""
    signature = tuple(columns)
    found = _ROW_FORMATTERS.get(signature)
    if found is not None:
        return found
    lines = ["def format_rows(rows, N='\\\\N', T=T, F=F):", "    out = []",
             "    for r in rows:", "        g = r.get"]
    fields = []
    for index, (column, sql_type) in enumerate(signature):
        formatter = copy_formatter(sql_type)
        inline = _INLINE_FORMATS.get(formatter, "F(VALUE)").replace("VALUE", f"v{index}")
        lines.append(f"        v{index} = g({column!r})")
        fields.append("{" + inline + "}")
    lines.append('        out.append(f"' + "\\t".join(fields) + '\\n")')
    lines.append("    return ''.join(out)")
    namespace: dict[str, Any] = {"T": _COPY_ESCAPES, "F": _copy_text}
    exec("\n".join(lines), namespace)  # generated from column names and types only
    generated: Callable[[Sequence[Row]], str] = namespace["format_rows"]
    _ROW_FORMATTERS[signature] = generated
    return generated


def copy_in(cursor: Any, statement: str, text: str) -> None:
    """COPY ... FROM STDIN with all the text in one read: psycopg2 reads its file 8 KB at a
    time by default, retaking the GIL for every chunk, which stalls behind a busy thread
    for a whole switch interval each time."""
    data = text.encode()
    cursor.copy_expert(statement, io.BytesIO(data), size=max(len(data), 8192))


class _RowsSource:
    """A file for COPY FROM STDIN that formats rows a slice at a time, as PostgreSQL asks
    for more: the server inserts one slice while Python formats the next, instead of
    waiting for all of the text and then for all of the inserts."""

    def __init__(self, rows: Sequence[Row], format_rows: Callable[[Sequence[Row]], str],
                 slice_rows: int = 2000) -> None:
        self.rows = rows
        self.format_rows = format_rows
        self.slice_rows = slice_rows
        self.index = 0

    def read(self, _size: int = -1) -> bytes:
        if self.index >= len(self.rows):
            return b""
        part = self.rows[self.index:self.index + self.slice_rows]
        self.index += self.slice_rows
        return self.format_rows(part).encode()


class _Pending:
    """What a batch will do to one row: replace it, patch it, raise columns, or delete it."""

    __slots__ = ("kind", "values")

    def __init__(self, kind: str, values: Row | None = None) -> None:
        self.kind = kind  # "put" | "patch" | "raise" | "delete"
        self.values: Row = {} if values is None else values


class KeyLedger:
    """Which keys a replay into fresh tables may already have written (as key hashes).

    A put of a key it never wrote can be COPYed straight into the table; any other goes
    through the upsert. A hash collision or a full ledger only sends rows the slow way."""

    def __init__(self, fresh_tables: Iterable[str], capacity: int = 5_000_000) -> None:
        self.capacity = capacity
        self.size = 0
        self.keys: dict[str, set[int]] = {name: set() for name in fresh_tables}

    def claim(self, table: str, key: Key) -> bool:
        """Record the key; True when it was surely not written before (only in tables
        the replay created empty)."""
        seen = self.keys.get(table)
        if seen is None or self.size >= self.capacity:
            return False
        digest = hash(key)
        if digest in seen:
            return False
        seen.add(digest)
        self.size += 1
        return True

    def split(self, table: str, rows: list[tuple[Key, Row]]
              ) -> tuple[list[Row], list[Row]]:
        """`claim` for many rows at once: (surely new rows, the others). Keys within `rows`
        are distinct (a batch holds one entry per key)."""
        seen = self.keys.get(table)
        if seen is None or self.size + len(rows) > self.capacity:
            return [], [r for _, r in rows]
        hashes = [hash(k) for k, _ in rows]
        known = seen.intersection(hashes)
        before = len(seen)
        seen.update(hashes)
        self.size += len(seen) - before
        if not known and len(seen) - before == len(rows):
            return [r for _, r in rows], []
        fresh: list[Row] = []
        others: list[Row] = []
        counted: set[int] = set()
        for digest, (_, row) in zip(hashes, rows, strict=True):
            if digest in known or digest in counted:  # known before, or a collision here
                others.append(row)
            else:
                counted.add(digest)
                fresh.append(row)
        return fresh, others


class CursorView:
    """Rows as stored, read through a cursor (the batch's own transaction)."""

    def __init__(self, cursor: Any, tables: Mapping[str, PhysicalTable]) -> None:
        self.cursor = cursor
        self.tables = tables

    def get(self, table: str, key: Key) -> Row | None:
        """The stored row with this key, or None."""
        physical = self.tables[table]
        match = " AND ".join(f'"{k}" = {physical.cast(k)}' for k in physical.key)
        self.cursor.execute(f"SELECT * FROM {physical.qualified} WHERE {match}", tuple(key))
        found = self.cursor.fetchone()
        if found is None:
            return None
        return dict(zip([d[0] for d in self.cursor.description], found, strict=True))


class RowBuffer:
    """Row operations of many events, coalesced per key, written in a few statements.

    It is also the `View` projections read: a row is looked up in the buffer first, then
    in `below`: by default the database through the batch's own transaction, or, in a
    pipelined replay, the previous batch's buffer that is still being written."""

    def __init__(self, cursor: Any, tables: Mapping[str, PhysicalTable],
                 below: View | None = None, ledger: KeyLedger | None = None) -> None:
        self.cursor = cursor
        self.tables = tables
        self.below: View = below if below is not None else CursorView(cursor, tables)
        self.ledger = ledger
        self.pending: dict[str, dict[Key, _Pending]] = {name: {} for name in tables}
        self._targets = {name: (self.pending[name], table.key_of)
                         for name, table in tables.items()}
        self.operations = 0

    def get(self, table: str, key: Key) -> Row | None:
        """The row as the events so far left it."""
        entry = self.pending[table].get(tuple(key))
        if entry is not None and entry.kind == "put":
            return dict(entry.values)
        if entry is not None and entry.kind == "delete":
            return None
        row = self.below.get(table, tuple(key))
        if row is None or entry is None:
            return row
        if entry.kind == "patch":
            row.update(entry.values)
        else:
            row.update({c: _greatest(row.get(c), v) for c, v in entry.values.items()})
        return row

    def add(self, ops: Iterable[Op]) -> None:
        """Merge operations into the batch, in order."""
        if isinstance(ops, list):
            self.operations += len(ops)
        targets = self._targets
        for op in ops:
            if type(op) is Put or isinstance(op, Put):  # the exact type first: it is cheaper
                row = op.row
                entries, key_of = targets[op.table]
                entries[key_of(row)] = _Pending("put", dict(row))
            elif isinstance(op, Patch):
                self._patch(op.table, tuple(op.key), op.changes)
            elif isinstance(op, Raise):
                self._raise(op.table, tuple(op.key), op.values)
            elif isinstance(op, Delete):
                self.pending[op.table][tuple(op.key)] = _Pending("delete")

    def _patch(self, table: str, key: Key, changes: Row) -> None:
        entry = self.pending[table].get(key)
        if entry is None:
            self.pending[table][key] = _Pending("patch", dict(changes))
        elif entry.kind in ("put", "patch"):
            entry.values.update(changes)
        elif entry.kind == "raise":
            # A raise already makes the row exist: fold it into a put-like upsert.
            spec = self.tables[table]
            row = self.get(table, key) or dict(zip(spec.key, key, strict=True))
            row.update(changes)
            self.pending[table][key] = _Pending("put", row)

    def _raise(self, table: str, key: Key, values: Row) -> None:
        entry = self.pending[table].get(key)
        if entry is None or entry.kind == "delete":
            spec = self.tables[table]
            kind = "raise" if entry is None else "put"
            self.pending[table][key] = _Pending(
                kind, {**dict(zip(spec.key, key, strict=True)), **values})
        elif entry.kind in ("put", "raise"):
            for column, value in values.items():
                entry.values[column] = _greatest(entry.values.get(column), value)
        else:  # a patch of a row that may not exist: resolve it against the stored row
            row = self.get(table, key)
            spec = self.tables[table]
            row = row or dict(zip(spec.key, key, strict=True))
            for column, value in values.items():
                row[column] = _greatest(row.get(column), value)
            self.pending[table][key] = _Pending("put", row)

    def flush(self, cursor: Any = None, clear: bool = True,
              only: Iterable[str] | None = None) -> int:
        """Write everything (through `cursor`, by default the buffer's own), or the tables
        in `only`; returns the number of rows touched. `clear=False` keeps the entries
        readable (a pipelined replay reads them while they are written)."""
        writer = TableWriter(self.cursor if cursor is None else cursor, self.ledger)
        written = 0
        for name in self.pending if only is None else only:
            entries = self.pending[name]
            table = self.tables[name]
            groups: dict[tuple[str, tuple[str, ...]], list[tuple[Key, Row]]] = {}
            for key, entry in entries.items():
                groups.setdefault((entry.kind, tuple(entry.values)), []).append(
                    (key, entry.values))
            for (kind, columns), rows in sorted(groups.items(), key=lambda g: _ORDER[g[0][0]]):
                writer.write(table, kind, columns, rows)
                written += len(rows)
            if clear:
                entries.clear()
        return written


class TableWriter:
    """Writes coalesced row operations of one table through one cursor."""

    def __init__(self, cursor: Any, ledger: KeyLedger | None = None) -> None:
        self.cursor = cursor
        self.ledger = ledger

    def write(self, table: PhysicalTable, kind: str, columns: tuple[str, ...],
              rows: list[tuple[Key, Row]]) -> None:
        """Rows of one kind with the same columns: delete, update, COPY or upsert them."""
        if kind == "delete":
            self._delete(table, [k for k, _ in rows])
        elif kind == "patch":
            self._update(table, columns, rows)
        elif self.ledger is not None and kind == "put":
            fresh, others = self.ledger.split(table.name, rows)
            if fresh:
                names = list(table.key) + [c for c in columns if c not in table.key]
                self._copy(table.qualified, table, names, fresh)
            if others:
                self._upsert(table, columns, others, greatest=False)
        else:
            if self.ledger is not None:
                for key, _ in rows:
                    self.ledger.claim(table.name, key)
            self._upsert(table, columns, [r for _, r in rows], greatest=kind == "raise")

    def _upsert(self, table: PhysicalTable, columns: tuple[str, ...], rows: list[Row],
                greatest: bool) -> None:
        names = list(table.key) + [c for c in columns if c not in table.key]
        others = [c for c in names if c not in table.key]
        if greatest:
            sets = ", ".join(f'"{c}" = greatest(cur."{c}", EXCLUDED."{c}")' for c in others)
        else:
            sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in others)
        conflict = f"DO UPDATE SET {sets}" if others else "DO NOTHING"
        if len(rows) >= COPY_THRESHOLD:
            self._copy_upsert(table, names, rows, conflict)
            return
        sql = (f"INSERT INTO {table.qualified} AS cur ({_names(names)}) VALUES %s "
               f"ON CONFLICT ({_names(table.key)}) {conflict}")
        template = "(" + ",".join(table.cast(c) for c in names) + ")"
        values = [tuple(_sql_value(r.get(c)) for c in names) for r in rows]
        execute_values(self.cursor, sql, values, template=template, page_size=2000)

    def _copy_upsert(self, table: PhysicalTable, names: list[str], rows: list[Row],
                     conflict: str) -> None:
        """Many rows: COPY them into a staging table, then one INSERT ... SELECT."""
        signature = hashlib.sha256(",".join(names).encode()).hexdigest()[:10]
        stage = f"stage_{table.name}_{signature}"
        columns = ", ".join(f'"{c}" {table.types[c]}' for c in names)
        self.cursor.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" ({columns}) '
                            "ON COMMIT DELETE ROWS")
        self._copy(f'"{stage}"', table, names, rows)
        self.cursor.execute(
            f'INSERT INTO {table.qualified} AS cur ({_names(names)}) SELECT {_names(names)} '
            f'FROM "{stage}" ON CONFLICT ({_names(table.key)}) {conflict}')
        self.cursor.execute(f'DELETE FROM "{stage}"')  # cheaper than TRUNCATE on temp tables

    def _copy(self, target: str, table: PhysicalTable, names: list[str], rows: list[Row]
              ) -> None:
        source = _RowsSource(rows, rows_formatter([(c, table.types[c]) for c in names]))
        self.cursor.copy_expert(f"COPY {target} ({_names(names)}) FROM STDIN", source)

    def _update(self, table: PhysicalTable, columns: tuple[str, ...],
                rows: list[tuple[Key, Row]]) -> None:
        names = list(table.key) + list(columns)
        sets = ", ".join(f'"{c}" = v."{c}"' for c in columns)
        match = " AND ".join(f't."{k}" = v."{k}"' for k in table.key)
        sql = (f"UPDATE {table.qualified} AS t SET {sets} FROM (VALUES %s) AS v({_names(names)}) "
               f"WHERE {match}")
        template = "(" + ",".join(table.cast(c) for c in names) + ")"
        values = [tuple(key) + tuple(_sql_value(r[c]) for c in columns) for key, r in rows]
        execute_values(self.cursor, sql, values, template=template, page_size=2000)

    def _delete(self, table: PhysicalTable, keys: list[Key]) -> None:
        match = " AND ".join(f't."{k}" = v."{k}"' for k in table.key)
        sql = (f"DELETE FROM {table.qualified} AS t USING (VALUES %s) AS v({_names(table.key)}) "
               f"WHERE {match}")
        template = "(" + ",".join(table.cast(c) for c in table.key) + ")"
        execute_values(self.cursor, sql, [tuple(k) for k in keys], template=template,
                       page_size=2000)


_ORDER = {"delete": 0, "put": 1, "raise": 2, "patch": 3}


def _names(columns: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _greatest(stored: Any, given: Any) -> Any:
    if stored is None:
        return given
    if given is None:
        return stored
    return max(stored, given)


# -- one projection's transactions ----------------------------------------------------------

@dataclass
class BatchOutcome:
    """What one batch did for one projection."""

    applied: int = 0
    duplicates: int = 0
    errors: int = 0
    reseek: dict[tuple[str, int], int] = field(default_factory=dict)
    stopped: str | None = None


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
        self.stopped = bool(row and row[0] == "stopped")
        return self.stopped

    def process(self, records: Sequence[Record], highwaters: Mapping[tuple[str, int], int]
                | None = None, track: bool = True) -> BatchOutcome:
        """Apply a batch in one transaction (see the module docstring)."""
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
                tables = self._physical_tables(cursor)
                todo, next_offsets = self._unapplied(cursor, records, outcome, track)
                buffer = RowBuffer(cursor, tables)
                done = self._apply_all(cursor, buffer, todo, outcome)
                buffer.flush()
                for record in done:
                    next_offsets[(record.topic, record.partition)] = record.offset + 1
                if track:
                    self._save_tracking(cursor, next_offsets, highwaters or {})
                if outcome.stopped is not None:
                    self._save_status(cursor, "stopped", outcome.stopped)
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

    def _apply_all(self, cursor: Any, buffer: RowBuffer, todo: list[Record],
                   outcome: BatchOutcome) -> list[Record]:
        events: list[tuple[Record, Event | None, str | None]] = []
        for record in todo:
            try:
                events.append((record, record.decode(), None))
            except ValueError as error:
                events.append((record, None, f"undecodable record: {error}"))
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
                problem = self._apply_one(buffer, event)
            if problem is not None and self.projection.on_error == "stop":
                outcome.stopped = (f"{record.topic}[{record.partition}]@{record.offset}: "
                                   f"{problem}")
                break
            if problem is not None:
                outcome.errors += 1
                buffer.add([self._error_row(record, event, problem)])
            else:
                outcome.applied += 1
            if event is not None:
                seen[event.aggregate_id] = (event.aggregate_version, event.position)
            done.append(record)
        self._save_versions(cursor, seen)
        return done

    def _apply_one(self, buffer: RowBuffer, event: Event) -> str | None:
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

    def _error_row(self, record: Record, event: Event | None, problem: str) -> Put:
        return Put("projection_errors", {
            "projection": self.tracking_name, "topic": record.topic,
            "partition": record.partition, "offset": record.offset,
            "tenant_id": event.tenant_id if event else None,
            "aggregate_id": event.aggregate_id if event else None,
            "aggregate_version": event.aggregate_version if event else None,
            "position": event.position if event else None,
            "event_type": event.type if event else None, "error": problem[:4000],
            "occurred_at": event.occurred_at if event else None})

    def _versions(self, cursor: Any, aggregates: set[str]) -> dict[str, tuple[int, int]]:
        if not aggregates:
            return {}
        cursor.execute("SELECT aggregate_id::text, version, position FROM projection_versions "
                       "WHERE projection = %s AND aggregate_id = ANY(%s::uuid[])",
                       (self.tracking_name, sorted(aggregates)))
        return {a: (int(v), int(p)) for a, v, p in cursor.fetchall()}

    def _save_versions(self, cursor: Any, seen: Mapping[str, tuple[int, int]]) -> None:
        if not seen:
            return
        execute_values(
            cursor,
            "INSERT INTO projection_versions (projection, aggregate_id, version, position) "
            "VALUES %s ON CONFLICT (projection, aggregate_id) DO UPDATE SET "
            "version = EXCLUDED.version, position = EXCLUDED.position",
            [(self.tracking_name, a, v, p) for a, (v, p) in seen.items()],
            template="(%s, %s::uuid, %s, %s)", page_size=5000)

    def _save_tracking(self, cursor: Any, next_offsets: Mapping[tuple[str, int], int],
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

    def _save_status(self, cursor: Any, state: str, error: str | None) -> None:
        cursor.execute(
            "INSERT INTO projection_status (projection, state, last_error, updated_at) "
            "VALUES (%s, %s, %s, now()) ON CONFLICT (projection) DO UPDATE SET "
            "state = EXCLUDED.state, last_error = EXCLUDED.last_error, "
            "updated_at = EXCLUDED.updated_at", (self.tracking_name, state, error))

    def _physical_tables(self, cursor: Any) -> dict[str, PhysicalTable]:
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

    def _connection(self) -> _Connection:
        return _Connection(self.engine)


def transactional(engine: Engine) -> Any:
    """A pooled raw connection in transaction mode.

    Pooled connections may come back with autocommit on (a LISTEN connection, for one); a
    batch must be one transaction, so this is set explicitly every time."""
    connection: Any = engine.raw_connection()
    if connection.driver_connection.autocommit:
        connection.driver_connection.autocommit = False
    return connection


class _Connection:
    """A raw DBAPI connection as a context manager that commits and closes."""

    def __init__(self, engine: Engine) -> None:
        self.connection = transactional(engine)

    def __enter__(self) -> Any:
        return self.connection

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.connection.commit()
        finally:
            self.connection.close()


def ensure_tables(engine: Engine, projections: Iterable[Projection],
                  schema: str = LIVE_SCHEMA) -> None:
    """Create the tables of projections that declare their columns (analysts' own)."""
    with _Connection(engine) as connection, connection.cursor() as cursor:
        for projection in projections:
            for spec in projection.tables:
                if spec.columns:
                    cursor.execute(table_ddl(spec.name, spec.key, spec.columns, schema))


def table_ddl(name: str, key: Sequence[str], columns: Mapping[str, str], schema: str) -> str:
    """CREATE TABLE IF NOT EXISTS for a declared table."""
    body = ", ".join(f'"{c}" {kind}' for c, kind in columns.items())
    return (f'CREATE TABLE IF NOT EXISTS "{schema}"."{name}" ({body}, '
            f"PRIMARY KEY ({_names(key)}))")


# -- the live consumer --------------------------------------------------------------------------

ConsumerFactory = Callable[[], KafkaConsumer]


class _Seeker(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, start each partition at the lowest offset any projection still needs."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    def on_partitions_revoked(self, revoked: Any) -> None:
        """Nothing to commit: progress is in PostgreSQL."""

    def on_partitions_assigned(self, assigned: Any) -> None:
        """Seek to the tracked offsets."""
        self.projector.seek_to_tracking(list(assigned))


class Projector:
    """The `cartolog projector` loop: consume, apply per projection, track, repeat."""

    def __init__(self, runners: Sequence[ProjectionRunner], make_consumer: ConsumerFactory,
                 topic: str, max_records: int = 5000) -> None:
        self.runners = list(runners)
        self.make_consumer = make_consumer
        self.topic = topic
        self.max_records = max_records
        self.stopping = threading.Event()
        self.consumer: KafkaConsumer | None = None
        self.lag: dict[int, int] = {}
        self._highwater_saved = 0.0

    def run(self) -> None:
        """Consume until stop(); each batch is committed in PostgreSQL before the next poll."""
        for runner in self.runners:
            runner.load_stopped()
        consumer = self.consumer = self.make_consumer()
        try:
            consumer.subscribe([self.topic], listener=_Seeker(self))
            while not self.stopping.is_set():
                self.step(consumer)
        finally:
            consumer.close()
            self.consumer = None

    def stop(self) -> None:
        """Finish the current batch and return."""
        self.stopping.set()

    def step(self, consumer: KafkaConsumer) -> None:
        """One poll and its transactions."""
        polled = consumer.poll(timeout_ms=500, max_records=self.max_records)
        records = [Record(tp.topic, tp.partition, r.offset, r.value)
                   for tp, batch in polled.items() for r in batch]
        highwaters = self._highwaters(consumer)
        reseek: dict[tuple[str, int], int] = {}
        for runner in self.runners:
            outcome = runner.process(records, highwaters)
            for tp, offset in outcome.reseek.items():
                reseek[tp] = min(offset, reseek.get(tp, offset))
        for (topic, partition), offset in reseek.items():
            log.info("projector: %s[%d] goes back to tracked offset %d", topic, partition, offset)
            consumer.seek(TopicPartition(topic, partition), offset)
        if not records:
            self._save_highwaters(highwaters)

    def seek_to_tracking(self, assigned: list[TopicPartition]) -> None:
        """Seek each partition to the minimum next offset of the projections still running."""
        consumer = self.consumer
        if consumer is None:
            return
        live = [r for r in self.runners if not r.stopped] or self.runners
        offsets = [r.tracked_offsets(self.topic) for r in live]
        for tp in assigned:
            needed = [o.get(tp.partition) for o in offsets]
            if any(n is None for n in needed):
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, min(n for n in needed if n is not None))

    def _highwaters(self, consumer: KafkaConsumer) -> dict[tuple[str, int], int]:
        found: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)  # correct on every broker; end_offsets is not
            if highwater is not None:
                found[(tp.topic, tp.partition)] = int(highwater)
                self.lag[tp.partition] = max(int(highwater) - consumer.position(tp), 0)
        return found

    def _save_highwaters(self, highwaters: Mapping[tuple[str, int], int]) -> None:
        now = time.monotonic()
        if not highwaters or now - self._highwater_saved < 2.0:
            return
        self._highwater_saved = now
        for runner in self.runners:
            with _Connection(runner.engine) as connection, connection.cursor() as cursor:
                execute_values(
                    cursor,
                    "UPDATE projection_tracking AS t SET highwater = v.h FROM (VALUES %s) AS "
                    "v(p, topic, part, h) WHERE t.projection = v.p AND t.topic = v.topic "
                    "AND t.partition = v.part",
                    [(runner.tracking_name, t, p, h) for (t, p), h in highwaters.items()])


def make_consumer(bootstrap_servers: str, group_id: str | None, **overrides: Any) -> KafkaConsumer:
    """A consumer that never commits offsets to the broker (tracking is in PostgreSQL)."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers, "group_id": group_id,
        "enable_auto_commit": False, "auto_offset_reset": "earliest",
        "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000,
        "max_poll_interval_ms": 300_000, "fetch_max_bytes": 32 * 1024 * 1024,
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
    }
    options.update(overrides)
    return KafkaConsumer(**options)


# -- queries: status, read-your-writes, absorbed positions ----------------------------------

def wait_for_version(engine: Engine, projection: str, aggregate_id: uuid.UUID | str,
                     version: int, timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Read-your-writes: wait until `projection` applied `version` of the aggregate.

    True when it did within `timeout` seconds, False otherwise (the caller decides whether
    to answer with stale data or 503)."""
    deadline = time.monotonic() + timeout
    while True:
        with _Connection(engine) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT version FROM projection_versions WHERE projection = %s "
                           "AND aggregate_id = %s::uuid", (projection, str(aggregate_id)))
            row = cursor.fetchone()
        if row is not None and int(row[0]) >= version:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def absorbed(engine: Engine, projection: str, position: int, after: int = 0,
             events_table: str = "cartolog_events") -> bool:
    """Whether `projection` applied every stored event with after < id <= position."""
    with _Connection(engine) as connection, connection.cursor() as cursor:
        cursor.execute(
            f"SELECT NOT EXISTS (SELECT 1 FROM {events_table} e WHERE e.id > %s AND e.id <= %s "
            "AND NOT EXISTS (SELECT 1 FROM projection_versions v WHERE v.projection = %s "
            "AND v.aggregate_id = e.originator_id AND v.version >= e.originator_version))",
            (after, position, projection))
        return bool(cursor.fetchone()[0])


@dataclass(frozen=True)
class ProjectionStatus:
    """One projection as `cartolog projections status` shows it."""

    name: str
    state: str
    offsets: dict[int, int]
    lag: int | None
    position: int
    errors: int
    last_error: str | None


def statuses(engine: Engine, names: Sequence[str], topic: str) -> list[ProjectionStatus]:
    """Position, lag and last error of each projection."""
    found = []
    with _Connection(engine) as connection, connection.cursor() as cursor:
        for name in names:
            cursor.execute("SELECT partition, next_offset, lag, highwater FROM "
                           "projection_tracking WHERE projection = %s AND topic = %s "
                           "ORDER BY partition", (name, topic))
            rows = cursor.fetchall()
            lags = [int(r[2]) for r in rows if r[3] is not None]
            cursor.execute("SELECT coalesce(max(position), 0) FROM projection_versions "
                           "WHERE projection = %s", (name,))
            position = int(cursor.fetchone()[0])
            cursor.execute("SELECT count(*), (SELECT error FROM projection_errors WHERE "
                           "projection = %s ORDER BY position DESC NULLS LAST LIMIT 1) FROM "
                           "projection_errors WHERE projection = %s", (name, name))
            errors, recorded = cursor.fetchone()
            cursor.execute("SELECT state, last_error FROM projection_status "
                           "WHERE projection = %s", (name,))
            status = cursor.fetchone()
            state, stop_error = (status[0], status[1]) if status else ("running", None)
            found.append(ProjectionStatus(
                name, state, {int(r[0]): int(r[1]) for r in rows}, sum(lags) if lags else None,
                position, int(errors), stop_error or recorded))
    return found


def lag_metrics(engine: Engine, topic: str) -> str:
    """Prometheus text: `cartolog_projection_lag{projection,partition}` from tracking rows."""
    lines = ["# HELP cartolog_projection_lag Records on the topic not yet applied.",
             "# TYPE cartolog_projection_lag gauge"]
    with _Connection(engine) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT projection, partition, lag FROM projection_tracking WHERE "
                       "topic = %s AND lag IS NOT NULL ORDER BY 1, 2", (topic,))
        lines += [f'cartolog_projection_lag{{projection="{p}",partition="{n}"}} {lag}'
                  for p, n, lag in cursor.fetchall()]
    return "\n".join(lines) + "\n"



# -- rebuild: replay into fresh tables, then swap them in ---------------------------------------

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
        with _Connection(self.engine) as connection, connection.cursor() as cursor:
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
        with _Connection(self.engine) as connection, connection.cursor() as cursor:
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
        with _replay_tuning():
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
            if _caught_up(consumer, assigned):
                # Empty partitions get a tracking row too: the live projector starts there.
                self.track_from(topic, {tp.partition: consumer.position(tp) for tp in assigned})
                return applied

    def replay_store(self, batches: Iterable[list[Event]], total: int,
                     progress: Progress | None = None) -> int:
        """Apply stored events, in notification order, batch after batch.

        The store holds each (aggregate id, version) once, so nothing needs de-duplicating.
        Pipelined: a reading thread fetches batch N+2 and its blobs, the caller's thread
        projects batch N+1, reading rows of batch N from its buffer and older rows from the
        database, while writer threads write batch N. Batches commit in order; the rebuild
        is swapped in only after the last commit.
        """
        replay = _PipelinedReplay(self.runner)
        applied = 0
        with _replay_tuning():
            try:
                for events, blobs in _read_ahead(batches, replay.fetch_blobs):
                    if not replay.apply(events, blobs):
                        break
                    applied += len(events)
                    if progress is not None and events:
                        progress(events[-1].position, total)
            finally:
                replay.finish()
        return applied

    def track_from(self, topic: str, offsets: Mapping[int, int]) -> None:
        """After a replay from the store: the live consumer re-reads the topic from these
        offsets and de-duplicates what the store already gave."""
        with _Connection(self.engine) as connection, connection.cursor() as cursor:
            self.runner._save_tracking(cursor, {(topic, p): o for p, o in offsets.items()}, {})

    def absorbed(self, position: int) -> bool:
        """Whether the rebuilt tables hold every stored event up to `position`."""
        return absorbed(self.engine, rebuild_name(self.projection.name), position)

    def swap(self) -> None:
        """Put the rebuilt tables and bookkeeping in place of the live ones, atomically."""
        live, name = self.projection.name, rebuild_name(self.projection.name)
        with _Connection(self.engine) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(live),))
            tables = [spec.name for spec in self.projection.tables]
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


@contextlib.contextmanager
def _replay_tuning() -> Iterator[None]:
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


def _read_ahead(batches: Iterable[list[Event]],
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


class _PipelinedReplay:
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
        self.tables = runner._physical_tables(self.reader_cursor)
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
            problem = runner._apply_one(buffer, event)
            if problem is not None:
                if runner.projection.on_error == "stop":
                    self._hand_over(buffer, seen, f"store@{event.position}: {problem}")
                    return False
                record = Record("store", 0, event.position, event=event)
                buffer.add([runner._error_row(record, event, problem)])
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
                    runner._save_status(cursor, "stopped", stopped)
            connection.commit()
        finally:
            connection.close()

    def _save_versions(self, cursor: Any, seen: Mapping[str, tuple[int, int]]) -> None:
        """Versions of aggregates new to the replay are COPYed, the others upserted."""
        claim, name = self.ledger.claim, self.runner.tracking_name
        fresh = {a: vp for a, vp in seen.items() if claim("projection_versions", (a,))}
        if fresh:
            label = name.translate(_COPY_ESCAPES)
            text_rows = "".join(f"{label}\t{a}\t{v}\t{p}\n" for a, (v, p) in fresh.items())
            copy_in(cursor, "COPY projection_versions (projection, aggregate_id, version, "
                    "position) FROM STDIN", text_rows)
        self.runner._save_versions(cursor, {a: vp for a, vp in seen.items() if a not in fresh})

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


def _dependent_views(cursor: Any, tables: Sequence[str]) -> dict[str, str]:
    """Views in the live schema over any of these tables, with their definitions."""
    cursor.execute(
        "SELECT DISTINCT v.relname, pg_get_viewdef(v.oid) FROM pg_depend d "
        "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
        "JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = %s AND t.relname = ANY(%s) AND v.oid <> t.oid ORDER BY 1",
        (LIVE_SCHEMA, list(tables)))
    return {name: definition.rstrip().rstrip(";") for name, definition in cursor.fetchall()}


def _caught_up(consumer: KafkaConsumer, assigned: list[TopicPartition]) -> bool:
    for tp in assigned:
        highwater = consumer.highwater(tp)
        if highwater is None or consumer.position(tp) < highwater:
            return False
    return True
