"""Status, lag and absorbed positions of projections, read from their bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from adapters.projector.base import CRASHED, STOPPED, Connection


def absorbed(engine: Engine, projection: str, position: int, after: int = 0,
             events_table: str = "cartolog_events") -> bool:
    """Whether `projection` applied every stored event with after < id <= position."""
    with Connection(engine) as connection, connection.cursor() as cursor:
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
    with Connection(engine) as connection, connection.cursor() as cursor:
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
            state = STOPPED if state == CRASHED else state
            found.append(ProjectionStatus(
                name, state, {int(r[0]): int(r[1]) for r in rows}, sum(lags) if lags else None,
                position, int(errors), stop_error or recorded))
    return found


def skipped_events(engine: Engine, projection: str) -> list[str]:
    """Each event `projection` recorded as an error and skipped, named for an operator."""
    with Connection(engine) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT position, tenant_id, event_type, aggregate_id, aggregate_version, topic, "
            "partition, \"offset\", error FROM projection_errors WHERE projection = %s "
            "ORDER BY position NULLS LAST, topic, partition, \"offset\"", (projection,))
        rows = cursor.fetchall()
    return [f"event at store position {position} ({kind} of {aggregate} v{version}, tenant "
            f"{tenant}; {topic}[{partition}]@{offset}) was not applied: {error}"
            for position, tenant, kind, aggregate, version, topic, partition, offset, error
            in rows]


def crashed(engine: Engine) -> list[str]:
    """Why the projector died, one line per projection it was applying (none when alive)."""
    with Connection(engine) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT projection, last_error FROM projection_status WHERE state = %s "
                       "ORDER BY projection", (CRASHED,))
        return [f"{name}: {error}" for name, error in cursor.fetchall()]


def lag_metrics(engine: Engine, topic: str) -> str:
    """Prometheus text: `cartolog_projection_lag{projection,partition}` from tracking rows."""
    lines = ["# HELP cartolog_projection_lag Records on the topic not yet applied.",
             "# TYPE cartolog_projection_lag gauge"]
    with Connection(engine) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT projection, partition, lag FROM projection_tracking WHERE "
                       "topic = %s AND lag IS NOT NULL ORDER BY 1, 2", (topic,))
        lines += [f'cartolog_projection_lag{{projection="{p}",partition="{n}"}} {lag}'
                  for p, n, lag in cursor.fetchall()]
    return "\n".join(lines) + "\n"


