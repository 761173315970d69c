"""The relay: follows the store's notification log and publishes every event to Kafka.

At-least-once, in store order: a batch is sent, the broker acknowledges all of it, and
only then is its last notification id recorded in PostgreSQL. After a crash the relay
resumes from the recorded position and republishes at most the unacknowledged tail;
consumers de-duplicate by (aggregate id, version).
"""

from __future__ import annotations

import logging
import select
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import Mapper, Notification
from kafka import KafkaProducer
from kafka.errors import KafkaError
from sqlalchemy import Engine
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import insert

from adapters.envelope import message
from adapters.eventstore import EVENTS_TABLE
from adapters.kafka import MAX_REQUEST_SIZE
from adapters.tables import relay_positions

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
# Consecutive failures at one position after which the relay reports itself stalled.
STALLED_AFTER = 10
# What a record adds to its key and value on the wire (headers, lengths, batch framing).
RECORD_OVERHEAD = 1024


class PublishFailed(RuntimeError):
    """The broker did not acknowledge a batch."""


class RecordTooLarge(PublishFailed):
    """A stored event is larger than the producer may send: no retry can publish it."""


class NotificationReader:
    """Reads the notification log in id order, straight from the events table."""

    def __init__(self, engine: Engine, table: str = EVENTS_TABLE) -> None:
        self.engine = engine
        self.table = table

    def after(self, position: int, limit: int, stop: int | None = None) -> list[Notification]:
        """Up to `limit` notifications with id > position (and <= stop)."""
        bound = "" if stop is None else " AND id <= %(stop)s"
        connection: Any = self.engine.raw_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, originator_id, originator_version, topic, state "
                    f"FROM {self.table} WHERE id > %(start)s{bound} ORDER BY id LIMIT %(limit)s",
                    {"start": position, "stop": stop, "limit": limit},
                )
                rows = cursor.fetchall()
            connection.commit()
        finally:
            connection.close()
        return [
            Notification(id=r[0], originator_id=uuid.UUID(str(r[1])), originator_version=r[2],
                         topic=r[3], state=bytes(r[4]))
            for r in rows
        ]

    def listen(self, channel: str = EVENTS_TABLE) -> Any:
        """A connection LISTENing on the store's channel (close it when done)."""
        pooled: Any = self.engine.raw_connection()
        connection = pooled.dbapi_connection
        pooled.detach()  # autocommit must not leak back into the pool: this one closes for real
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {channel}")
        return connection

    def head(self) -> int:
        """The highest notification id in the store (0 when empty)."""
        connection: Any = self.engine.raw_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT coalesce(max(id), 0) FROM {self.table}")
                (head,) = cursor.fetchone()
            connection.commit()
        finally:
            connection.close()
        return int(head)


class Publisher:
    """Sends notifications as envelopes and waits until the broker acknowledged all."""

    def __init__(self, make_producer: Callable[[], KafkaProducer], topic: str,
                 mapper: Mapper[uuid.UUID]) -> None:
        self.make_producer = make_producer
        self.topic = topic
        self.mapper = mapper
        self._producer: KafkaProducer | None = None

    def publish(self, notifications: list[Notification]) -> None:
        """Publish in order; raises PublishFailed unless every record was acknowledged."""
        messages = [message(n, self.mapper) for n in notifications]
        for notification, (key, value) in zip(notifications, messages, strict=True):
            if len(key) + len(value) + RECORD_OVERHEAD > MAX_REQUEST_SIZE:
                raise RecordTooLarge(
                    f"event at position {notification.id} is {len(value)} bytes, more than "
                    f"the producer's limit of {MAX_REQUEST_SIZE}")
        producer = self._producer or self._new_producer()
        try:
            futures = [producer.send(self.topic, key=key, value=value)
                       for key, value in messages]
            producer.flush()
        except KafkaError as error:
            self.reset()
            raise PublishFailed(str(error)) from error
        failed = [f.exception for f in futures if not f.succeeded()]
        if failed:
            # An idempotent producer can be fenced for good (e.g. the broker restarted
            # empty): start over with a new one.
            self.reset()
            raise PublishFailed(f"{len(failed)} records not acknowledged: {failed[0]!r}")

    def _new_producer(self) -> KafkaProducer:
        self._producer = self.make_producer()
        return self._producer

    def reset(self) -> None:
        """Drop the current producer; the next publish makes a new one."""
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except KafkaError:
                log.warning("closing a failed producer raised", exc_info=True)
            self._producer = None

    def close(self) -> None:
        """Flush and close the producer."""
        self.reset()


class PositionStore:
    """The relay's last acknowledged notification id, in PostgreSQL."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name

    def load(self) -> int:
        """The recorded position (0 if none)."""
        query = sql_select(relay_positions.c.position).where(relay_positions.c.name == self.name)
        with self.engine.connect() as connection:
            value = connection.execute(query).scalar()
        return int(value or 0)

    def save(self, position: int) -> None:
        """Record `position`; never moves backwards."""
        statement = insert(relay_positions).values(name=self.name, position=position)
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"position": excluded.position, "updated_at": excluded.updated_at},
            where=relay_positions.c.position < excluded.position,
        )
        with self.engine.begin() as connection:
            connection.execute(statement)


class Relay:
    """Follows the log with LISTEN/NOTIFY (a poll every `idle_timeout` only as a safety net)."""

    def __init__(self, reader: NotificationReader, publisher: Publisher, positions: PositionStore,
                 channel: str, batch_size: int = 2000, idle_timeout: float = 5.0) -> None:
        self.reader = reader
        self.publisher = publisher
        self.positions = positions
        self.channel = channel
        self.batch_size = batch_size
        self.idle_timeout = idle_timeout
        self.stopping = threading.Event()
        self.failures = 0

    def run(self) -> None:
        """Relay until `stop()`; the last acknowledged batch is recorded before returning."""
        listener = self.reader.listen(self.channel)
        try:
            position = self.positions.load()
            log.info("relay resuming after position %d", position)
            while not self.stopping.is_set():
                position = self._step(position, listener)
        finally:
            listener.close()
            self.publisher.close()

    def stop(self) -> None:
        """Ask the loop to finish its batch and return."""
        self.stopping.set()

    def _step(self, position: int, listener: Any) -> int:
        batch = self.reader.after(position, self.batch_size)
        if not batch:
            wait_for_notify(listener, self.idle_timeout, self.stopping)
            return position
        try:
            self.publisher.publish(batch)
        except PublishFailed as error:
            self._report_failure(position, error)
            self.stopping.wait(1.0)
            return self.positions.load()
        self.failures = 0
        self.positions.save(batch[-1].id)
        return batch[-1].id

    def _report_failure(self, position: int, error: PublishFailed) -> None:
        """Warn of a failed publish; an error once it cannot or has long not succeeded, as
        every event after `position` waits (none is skipped)."""
        self.failures += 1
        if isinstance(error, RecordTooLarge) or self.failures >= STALLED_AFTER:
            log.error("relay stalled after position %d (%d failed attempts; later events "
                      "wait, none is dropped): %s", position, self.failures, error)
        else:
            log.warning("publish failed at position %d, retrying: %s", position, error)



def wait_for_notify(listener: Any, timeout: float, stopping: threading.Event) -> None:
    """Block until a NOTIFY arrives on `listener`, `timeout` passes or `stopping` is set."""
    raw = listener
    deadline = time.monotonic() + timeout
    while not stopping.is_set() and time.monotonic() < deadline:
        if select.select([raw], [], [], 0.2) != ([], [], []):
            raw.poll()
            if raw.notifies:
                raw.notifies.clear()
                return


def republish(reader: NotificationReader, publisher: Publisher, start: int = 0,
              stop: int | None = None, batch_size: int = 2000,
              progress: Progress | None = None) -> int:
    """Send the stored events with start < id <= stop (default: the head) again."""
    end = reader.head() if stop is None else stop
    position, sent = start, 0
    while position < end:
        batch = reader.after(position, batch_size, stop=end)
        if not batch:
            break
        publisher.publish(batch)
        position, sent = batch[-1].id, sent + len(batch)
        if progress is not None:
            progress(position, end)
    publisher.close()
    return sent
