"""Event store on PostgreSQL: eventsourcing_sqlalchemy with group commit.

The library's insert path takes `LOCK TABLE ... IN EXCLUSIVE MODE` for every save, so
commit order equals notification-id order (a live subscriber never skips an event) but
writers queue behind each other, one commit each. Here concurrent saves are grouped: the
first waiting writer becomes the leader and commits everything queued so far in one
transaction under that same lock, then hands leadership to the next waiting writer. One
fsync serves many saves; the ordering guarantee is unchanged. A batch that hits a
version conflict is retried save by save, so only the conflicting save fails.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg2
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Engine

APPLICATION_NAME = "Cartolog"
EVENTS_TABLE = "cartolog_events"


@dataclass
class _Save:
    events: Sequence[StoredEvent]
    finished: bool = False
    ids: list[int] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommitRecorder(SQLAlchemyApplicationRecorder):
    """Application recorder whose concurrent `insert_events` calls share one transaction."""

    max_batch = 5000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = threading.Condition()
        self._queue: list[_Save] = []
        self._leader_busy = False
        self._connection: Any = None
        self._readers = threading.local()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], *, session: Any = None, **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert the events of one save atomically; returns their notification ids."""
        if session is not None:
            return super().insert_events(stored_events, session=session, **kwargs)
        save = _Save(stored_events)
        with self._turn:
            self._queue.append(save)
            while not save.finished:
                if self._leader_busy:
                    self._turn.wait()
                else:
                    self._lead()
        if save.error is not None:
            raise save.error
        return save.ids

    def _lead(self) -> None:
        """Commit what is queued; called and returns with the condition's lock held."""
        self._leader_busy = True
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        self._turn.release()
        try:
            self._commit(batch)
        finally:
            self._turn.acquire()
            for save in batch:
                save.finished = True
            self._leader_busy = False
            self._turn.notify_all()

    def _commit(self, batch: list[_Save]) -> None:
        try:
            self._insert_batch(batch)
        except psycopg2.IntegrityError:  # the whole statement rolled back
            if len(batch) == 1:
                batch[0].error = IntegrityError("version conflict")
                return
            for save in batch:
                self._commit([save])
        except psycopg2.Error as error:
            self._discard_connection()
            for save in batch:
                save.error = error

    def _insert_batch(self, batch: list[_Save]) -> None:
        connection = self._leader_connection()
        with connection.cursor() as cursor:
            values = b",".join(
                cursor.mogrify("(%s,%s,%s,%s)", (str(e.originator_id), e.originator_version,
                                                 e.topic, psycopg2.Binary(e.state)))
                for save in batch for e in save.events
            )
            # One round trip and one implicit transaction (autocommit connection, several
            # statements in one query): lock, notify (delivered at commit), insert.
            cursor.execute(
                f"LOCK TABLE {self.events_table_name} IN EXCLUSIVE MODE;"
                f"NOTIFY {self.channel_name};"
                f"INSERT INTO {self.events_table_name} "
                f"(originator_id, originator_version, topic, state) VALUES ".encode()
                + values + b" RETURNING id"
            )
            returned = cursor.fetchall()
        # Under the table lock the sequence numbers rows in VALUES order.
        ids = sorted(row[0] for row in returned)
        offset = 0
        for save in batch:
            save.ids = ids[offset : offset + len(save.events)]
            offset += len(save.events)

    def select_events(
        self, originator_id: UUID | str, gt: int | None = None, lte: int | None = None,
        desc: bool = False, limit: int | None = None,
    ) -> list[StoredEvent]:
        """One aggregate's events; a plain indexed query on this thread's own connection."""
        sql = [f"SELECT originator_version, topic, state FROM {self.events_table_name} "
               "WHERE originator_id = %s"]
        params: list[Any] = [str(originator_id)]
        if gt is not None:
            sql.append("AND originator_version > %s")
            params.append(gt)
        if lte is not None:
            sql.append("AND originator_version <= %s")
            params.append(lte)
        sql.append("ORDER BY originator_version DESC" if desc else "ORDER BY originator_version")
        if limit is not None:
            sql.append("LIMIT %s")
            params.append(limit)
        rows = self._read(" ".join(sql), params)
        return [StoredEvent(originator_id=originator_id, originator_version=row[0],
                            topic=row[1], state=bytes(row[2])) for row in rows]

    def _read(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        connection = getattr(self._readers, "connection", None)
        if connection is None or connection.closed:
            connection = self._readers.connection = self._connect(autocommit=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        except psycopg2.OperationalError:
            connection.close()
            raise

    def _connect(self, autocommit: bool = False) -> Any:
        engine = self.datastore.engine
        assert isinstance(engine, Engine)
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        connection = psycopg2.connect(*cargs, **cparams)
        connection.autocommit = autocommit
        return connection

    def _leader_connection(self) -> Any:
        if self._connection is None or self._connection.closed:
            self._connection = self._connect(autocommit=True)
        return self._connection

    def _discard_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None


class GroupCommitFactory(SQLAlchemyFactory):
    """eventsourcing_sqlalchemy with the group-commit recorder."""

    application_recorder_class = GroupCommitRecorder


PERSISTENCE_TOPIC = "adapters.eventstore:GroupCommitFactory"


def store_environment(sqlalchemy_url: str, create_table: bool = False) -> dict[str, str]:
    """The eventsourcing environment for Cartolog's event store."""
    return {
        "PERSISTENCE_MODULE": PERSISTENCE_TOPIC,
        "SQLALCHEMY_URL": sqlalchemy_url,
        "CREATE_TABLE": "y" if create_table else "n",
    }
