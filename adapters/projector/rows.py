"""Row operations of many events, coalesced per key, and the statements that write them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from psycopg2.extras import Json, execute_values

from adapters.projector.copytext import COPY_THRESHOLD, RowsSource, rows_formatter
from projections.base import Delete, Key, Op, Patch, Put, Raise, Row, View


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
        # Rows written per table since the buffer was made (the live projector ANALYZEs a
        # table after a large write, see ProjectionRunner.analyze_after).
        self.written: dict[str, int] = {}

    def clear(self) -> None:
        """Forget every pending operation."""
        for entries in self.pending.values():
            entries.clear()
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
                self.written[name] = self.written.get(name, 0) + len(rows)
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
        source = RowsSource(rows, rows_formatter([(c, table.types[c]) for c in names]))
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

