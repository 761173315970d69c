"""`cartolog projections retry`: apply recorded errors again, once the cause is fixed.

An event recorded in `projection_errors` was skipped: its version counts as applied, so
the live projector never sees it again. A retry applies each recorded event (read from
the store, the system of record, by its position) in a savepoint of its own, in position
order, and deletes its error row when it applies; an event that fails again keeps its
row, with the new error. A projection stopped by its `stop` policy resumes: its tracking
still points at the event that stopped it, so the live projector applies that event
again (and stops again if it still fails).

A retried event is applied after later events of its aggregate were: a projection whose
rows depend on that order is made exact by `projections rebuild`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.projector.base import STOPPED, Connection, advisory_key, printable
from adapters.projector.rows import RowBuffer
from adapters.projector.runner import ProjectionRunner
from projections.base import Event

# Stored events by position (the positions absent from the store are left out).
EventLoader = Callable[[Iterable[int]], Mapping[int, Event]]


@dataclass
class RetryOutcome:
    """What a retry did for one projection."""

    applied: int = 0
    failed: list[str] = field(default_factory=list)
    unavailable: int = 0
    resumed: bool = False


def retry(runner: ProjectionRunner, load: EventLoader) -> RetryOutcome:
    """Apply `runner`'s recorded errors again, in one transaction; resume it if stopped."""
    outcome = RetryOutcome()
    with Connection(runner.engine) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(runner.tracking_name),))
        cursor.execute("SELECT topic, partition, \"offset\", position FROM projection_errors "
                       "WHERE projection = %s ORDER BY position NULLS LAST, topic, partition, "
                       "\"offset\"", (runner.tracking_name,))
        rows = cursor.fetchall()
        events = load([int(r[3]) for r in rows if r[3] is not None])
        buffer = RowBuffer(cursor, runner.physical_tables(cursor))
        for topic, partition, offset, position in rows:
            event = events.get(int(position)) if position is not None else None
            if event is None:
                outcome.unavailable += 1
                continue
            problem = runner.apply_stored(cursor, buffer, event)
            _settle(cursor, runner.tracking_name, (topic, partition, offset), problem)
            if problem is None:
                outcome.applied += 1
            else:
                outcome.failed.append(f"position {position}: {printable(problem)}")
        cursor.execute("DELETE FROM projection_status WHERE projection = %s AND state = %s",
                       (runner.tracking_name, STOPPED))
        outcome.resumed = cursor.rowcount > 0
    return outcome


def _settle(cursor: Any, projection: str, where: tuple[str, int, int], problem: str | None
            ) -> None:
    """Delete the error row of an event that applied; keep the new error of one that did not."""
    if problem is None:
        cursor.execute("DELETE FROM projection_errors WHERE projection = %s AND topic = %s "
                       "AND partition = %s AND \"offset\" = %s", (projection, *where))
    else:
        cursor.execute("UPDATE projection_errors SET error = %s WHERE projection = %s AND "
                       "topic = %s AND partition = %s AND \"offset\" = %s",
                       (printable(problem)[:4000], projection, *where))
