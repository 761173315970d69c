"""Records, advisory locks and connections shared by every part of the projector."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import psycopg2
from sqlalchemy import Engine

from projections.base import Event, ProjectionError
from projections.jsonparse import loads

LIVE_SCHEMA = "public"
# Errors a projection's apply() may raise on a bad event; they follow its error policy.
APPLY_ERRORS = (ProjectionError, LookupError, TypeError, ValueError, ArithmeticError,
                AttributeError)
# Errors writing an event's rows may raise when PostgreSQL cannot store its values (NUL in
# text, numbers out of range, a constraint): they follow the error policy too. Not among
# them: OperationalError and InterfaceError (connection lost, deadlock, timeout), which
# are no event's fault.
WRITE_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError, psycopg2.ProgrammingError,
                psycopg2.InternalError, psycopg2.NotSupportedError, ValueError, TypeError,
                ArithmeticError)
# projection_status states: stopped by the `stop` policy (until rebuilt), or by the death
# of the projector process (until it runs again).
STOPPED = "stopped"
CRASHED = "crashed"


def printable(text: str) -> str:
    """Text PostgreSQL can store: NUL written as \\x00."""
    return text.replace("\x00", "\\x00")


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


def transactional(engine: Engine) -> Any:
    """A pooled raw connection in transaction mode.

    Pooled connections may come back with autocommit on (a LISTEN connection, for one); a
    batch must be one transaction, so this is set explicitly every time."""
    connection: Any = engine.raw_connection()
    if connection.driver_connection.autocommit:
        connection.driver_connection.autocommit = False
    return connection


class Connection:
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

