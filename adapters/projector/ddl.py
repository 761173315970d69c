"""Tables of projections that declare their own columns (analysts' projections)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Engine

from adapters.projector.base import LIVE_SCHEMA, Connection
from projections.base import Projection


def ensure_tables(engine: Engine, projections: Iterable[Projection],
                  schema: str = LIVE_SCHEMA) -> None:
    """Create the tables of projections that declare their columns (analysts' own)."""
    with Connection(engine) as connection, connection.cursor() as cursor:
        for projection in projections:
            for spec in projection.tables:
                if spec.columns:
                    cursor.execute(table_ddl(spec.name, spec.key, spec.columns, schema))


def table_ddl(name: str, key: Sequence[str], columns: Mapping[str, str], schema: str) -> str:
    """CREATE TABLE IF NOT EXISTS for a declared table."""
    body = ", ".join(f'"{c}" {kind}' for c, kind in columns.items())
    primary = ", ".join(f'"{k}"' for k in key)
    return f'CREATE TABLE IF NOT EXISTS "{schema}"."{name}" ({body}, PRIMARY KEY ({primary}))'

