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

import psycopg2
import psycopg2.extras
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder

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
        except psycopg2.IntegrityError:
            self._rollback()
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
        rows = [
            (str(e.originator_id), e.originator_version, e.topic, psycopg2.Binary(e.state))
            for save in batch for e in save.events
        ]
        connection = self._raw_connection()
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {self.events_table_name} IN EXCLUSIVE MODE")
            returned = psycopg2.extras.execute_values(
                cursor,
                f"INSERT INTO {self.events_table_name} "
                "(originator_id, originator_version, topic, state) VALUES %s RETURNING id",
                rows, page_size=len(rows) + 1, fetch=True,
            )
            cursor.execute(f"NOTIFY {self.channel_name}")
        connection.commit()
        # Under the table lock the sequence numbers rows in VALUES order.
        ids = sorted(row[0] for row in returned)
        offset = 0
        for save in batch:
            save.ids = ids[offset : offset + len(save.events)]
            offset += len(save.events)

    def _raw_connection(self) -> Any:
        if self._connection is None:
            assert self.datastore.engine is not None
            self._connection = self.datastore.engine.raw_connection()
        return self._connection

    def _rollback(self) -> None:
        try:
            self._raw_connection().rollback()
        except psycopg2.Error:
            self._discard_connection()

    def _discard_connection(self) -> None:
        if self._connection is not None:
            self._connection.invalidate()
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


def recorder_of(application: Any) -> ApplicationRecorder:
    """The application's recorder, typed."""
    recorder: ApplicationRecorder = application.recorder
    return recorder
