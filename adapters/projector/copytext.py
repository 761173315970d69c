"""COPY text: exact per-type formatters and generated row formatters."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from projections.base import Row

COPY_THRESHOLD = 500
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


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
    return str(value).translate(COPY_ESCAPES)


def _copy_float(value: Any) -> str:
    return "\\N" if value is None else repr(float(value))


def _copy_plain(value: Any) -> str:
    return "\\N" if value is None else str(value)


def _copy_time(value: Any) -> str:
    return "\\N" if value is None else value.isoformat()


def _copy_escaped(value: Any) -> str:
    return "\\N" if value is None else str(value).translate(COPY_ESCAPES)


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
    namespace: dict[str, Any] = {"T": COPY_ESCAPES, "F": _copy_text}
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


class RowsSource:
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

