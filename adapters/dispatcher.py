"""The dispatcher: turns SimulationRun events into job messages, each attempt once.

It reads `cartolog.events` (group `cartolog-dispatcher`) and, for every SimulationRun event,
derives from the run's *current* state in the store which job should be live:

- queued → the next attempt's job, due now;
- retrying → the next attempt's job, due after an exponential back-off (a not-before time
  kept in the outbox row, so nothing sleeps and other jobs are not held up);
- running → the running attempt's job (it exists unless the broker lost it);
- dead-lettered → a message on the dead-letter topic;
- completed or cancelled → nothing.

Each job is a row of `simulation_job_outbox` keyed by (run, attempt): a replayed event finds
the row and enqueues nothing. A row remembers where its message was stored; when a replayed
event meets a published job whose record is gone from the jobs topic (the broker restarted
empty and `cartolog log republish` replayed the log), the job is sent again, ahead of later
jobs. Dead letters are sent when due; jobs are released only as workers free up, one to each
free worker's partition, in the fair order of `adapters.job_queue` (decision 0310). Rows are
marked sent only after the broker acknowledged them.

Releasing runs in a thread of its own that waits on PostgreSQL's NOTIFY (`cartolog_jobs`):
a new outbox row and a worker turning idle wake it at once, so a job never waits for a
fetch of the events topic to end (decision 0313). It also looks every `release_every_s`
for retries that came due and workers that came or went.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select as selectors
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert

from adapters.job_queue import JobQueue, listen, mark_consumed, notify
from adapters.jobs import (
    DEAD_LETTER_SCHEMA,
    AckedProducer,
    JobMessage,
    SendFailed,
    commit_one,
    decode_job,
    encode,
)
from adapters.jobs_tables import job_outbox
from adapters.kafka import make_consumer
from domain.application import Cartolog
from domain.errors import NotFound
from domain.ports import InputUnavailable, ResolvedInput, Resolver
from domain.simulation import DEAD_LETTERED, QUEUED, RETRYING, RUNNING, SimulationRun

log = logging.getLogger(__name__)
JOB, DEAD_LETTER = "job", "dead_letter"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off: `base_s * 2 ** (attempt - 1)`, at most `max_s`."""

    base_s: float = 5.0
    max_s: float = 300.0

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt `failed_attempt` failed."""
        return float(min(self.max_s, self.base_s * 2 ** max(0, failed_attempt - 1)))


@dataclass(frozen=True)
class OutboxRow:
    """A job or dead letter waiting to be sent, or sent (partition/offset known)."""

    kind: str
    run_id: uuid.UUID
    attempt: int
    topic: str
    value: bytes
    published: bool
    partition: int | None
    offset: int | None


class Outbox:
    """`simulation_job_outbox`: one row per job attempt or dead letter."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, kind: str, run: SimulationRun, attempt: int, topic: str, value: bytes,
            not_before: datetime) -> OutboxRow | None:
        """Insert the row; returns the existing row instead when there is one."""
        statement = insert(job_outbox).values(
            kind=kind, run_id=run.id, attempt=attempt, tenant_id=run.tenant_id, topic=topic,
            value=value, not_before=not_before,
        ).on_conflict_do_nothing(index_elements=["kind", "run_id", "attempt"])
        with self.engine.begin() as connection:
            if connection.execute(statement).rowcount == 1:
                notify(connection, topic)
                return None
        return self.get(kind, run.id, attempt)

    def get(self, kind: str, run_id: uuid.UUID, attempt: int) -> OutboxRow:
        """One row, which must exist."""
        row = self.find(kind, run_id, attempt)
        if row is None:
            raise LookupError(f"no outbox row {kind} {run_id} {attempt}")
        return row

    def find(self, kind: str, run_id: uuid.UUID, attempt: int) -> OutboxRow | None:
        """One row, or None."""
        query = select(job_outbox).where(job_outbox.c.kind == kind,
                                         job_outbox.c.run_id == run_id,
                                         job_outbox.c.attempt == attempt)
        with self.engine.connect() as connection:
            found = connection.execute(query).first()
        return None if found is None else _row(found)

    def due(self, kind: str, limit: int = 100) -> list[OutboxRow]:
        """Unsent rows of a kind whose not-before time has come, oldest first."""
        query = select(job_outbox).where(
            job_outbox.c.kind == kind, job_outbox.c.published_at.is_(None),
            job_outbox.c.not_before <= func.now(),
        ).order_by(job_outbox.c.not_before).limit(limit)
        with self.engine.connect() as connection:
            return [_row(r) for r in connection.execute(query)]

    def mark_sent(self, row: OutboxRow, partition: int, offset: int) -> None:
        """The broker acknowledged the row's message at partition/offset."""
        self._set(row, published_at=func.now(), partition=partition, offset=offset)

    def resend(self, row: OutboxRow) -> None:
        """Send the row again, keeping its place in the queue (its message was lost)."""
        self._set(row, published_at=None, consumed_at=None)
        with self.engine.begin() as connection:
            notify(connection, row.topic)

    def discard(self, row: OutboxRow) -> None:
        """The row's job is no longer wanted (e.g. the run was cancelled first)."""
        self._set(row, published_at=func.now(), consumed_at=func.now())

    def discard_waiting(self, run_id: uuid.UUID) -> None:
        """Drop the unsent jobs of a run that has ended (it leaves the queue at once)."""
        statement = update(job_outbox).where(
            job_outbox.c.kind == JOB, job_outbox.c.run_id == run_id,
            job_outbox.c.published_at.is_(None)).values(published_at=func.now(),
                                                        consumed_at=func.now())
        with self.engine.begin() as connection:
            connection.execute(statement)

    def _set(self, row: OutboxRow, **values: Any) -> None:
        statement = update(job_outbox).where(
            job_outbox.c.kind == row.kind, job_outbox.c.run_id == row.run_id,
            job_outbox.c.attempt == row.attempt).values(**values)
        with self.engine.begin() as connection:
            connection.execute(statement)


def _row(r: Any) -> OutboxRow:
    return OutboxRow(r.kind, r.run_id, r.attempt, r.topic, bytes(r.value),
                     r.published_at is not None, r.partition, r.offset)


class JobLocator:
    """Checks that a sent job is still at its partition/offset in the jobs topic."""

    def __init__(self, bootstrap_servers: str, timeout: float = 5.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout

    def present(self, topic: str, partition: int, offset: int, expected_job_id: str) -> bool:
        """True if the record at `offset` is that job."""
        consumer = make_consumer(self.bootstrap_servers, max_poll_records=1)
        with contextlib.closing(consumer):
            tp = TopicPartition(topic, partition)
            if partition not in (consumer.partitions_for_topic(topic) or set()):
                return False
            consumer.assign([tp])
            consumer.seek(tp, offset)  # a throwaway consumer: skipping past the end is harmless
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                for record in consumer.poll(timeout_ms=250).get(tp, []):
                    return record.offset == offset and _job_id(record.value) == expected_job_id
                highwater = consumer.highwater(tp)
                if highwater is not None and highwater <= offset:
                    return False
        return False


def _job_id(value: bytes) -> str | None:
    try:
        return decode_job(value).job_id
    except (ValueError, TypeError):
        return None


class Dispatcher:
    """Events in, outbox rows, job and dead-letter messages out."""

    def __init__(self, app: Cartolog, outbox: Outbox, queue: JobQueue, producer: AckedProducer,
                 consumer_factory: Callable[[], KafkaConsumer], locator: JobLocator,
                 resolve: Resolver, jobs_topic: str, dlq_topic: str,
                 retry: RetryPolicy | None = None, release_every_s: float = 0.5) -> None:
        self.app = app
        self.outbox = outbox
        self.queue = queue
        self.producer = producer
        self.consumer_factory = consumer_factory
        self.locator = locator
        self.resolve = resolve
        self.jobs_topic = jobs_topic
        self.dlq_topic = dlq_topic
        self.retry = retry or RetryPolicy()
        self.release_every_s = release_every_s
        self.stopping = threading.Event()

    def run(self) -> None:
        """Dispatch until stop(): events are read here, jobs released by a second thread."""
        releaser = threading.Thread(target=self._release_loop, name="dispatcher release",
                                    daemon=True)
        releaser.start()
        consumer = self.consumer_factory()
        try:
            while not self.stopping.is_set():
                try:
                    self._consume(consumer)
                except KafkaError as error:
                    log.warning("reading events failed, retrying: %r", error)
                    self.stopping.wait(1.0)
        finally:
            self.stopping.set()
            consumer.close()
            releaser.join(30)

    def _release_loop(self) -> None:
        """Send what is due whenever woken (NOTIFY) or every `release_every_s`."""
        listener: Any = None
        try:
            while not self.stopping.is_set():
                try:
                    if listener is None:
                        listener = listen(self.outbox.engine)
                    self.send_due()
                    _wait_for_notify(listener, self.release_every_s)
                except Exception:  # the database went away: keep trying, never die quietly
                    log.exception("releasing jobs failed, retrying")
                    with contextlib.suppress(Exception):
                        if listener is not None:
                            listener.close()
                    listener = None
                    self.stopping.wait(1.0)
        finally:
            if listener is not None:
                listener.close()
            self.producer.close()

    def stop(self) -> None:
        """Finish the current batch and return."""
        self.stopping.set()

    def _consume(self, consumer: KafkaConsumer) -> None:
        polled = consumer.poll(timeout_ms=300, max_records=500)
        # In log order across partitions: runs requested one after another are queued, and
        # so released, in that order whichever partitions their events went to.
        records = sorted(((tp, r) for tp, batch in polled.items() for r in batch),
                         key=lambda item: _log_position(item[1].value))
        for tp, record in records:
            self._handle(record.value, tp, record.offset)
        for tp, batch in polled.items():
            commit_one(consumer, tp, batch[-1].offset + 1)

    def _handle(self, value: bytes, tp: TopicPartition, offset: int) -> None:
        try:
            document = json.loads(value)
        except ValueError:
            log.error("not an event envelope at %s:%d@%d", tp.topic, tp.partition, offset)
            return
        if document.get("aggregate_type") == "SimulationRun":
            self.reconcile(uuid.UUID(document["aggregate_id"]))

    def reconcile(self, run_id: uuid.UUID) -> None:
        """Make sure the job (or dead letter) the run's current state calls for exists."""
        try:
            run = self.app.find_run(run_id)
        except NotFound:
            log.warning("run %s is in the log but not in the store", run_id)
            return
        self._settle(run)
        if run.status in (QUEUED, RETRYING):
            self._ensure_job(run, run.attempt + 1, self._due_time(run))
        elif run.status == RUNNING:
            self._ensure_job(run, run.attempt, run.created_on)
        elif run.status == DEAD_LETTERED:
            self.outbox.add(DEAD_LETTER, run, run.attempt, self.dlq_topic, _dead_letter(run),
                            datetime.now(UTC))

    def _settle(self, run: SimulationRun) -> None:
        """Jobs of attempts the run is past are no longer in flight (their worker may have
        died between committing and saying so, or a cancelled job may never be read)."""
        if run.is_terminal:
            mark_consumed(self.outbox.engine, run.id)
            self.outbox.discard_waiting(run.id)
        else:
            mark_consumed(self.outbox.engine, run.id,
                          max_attempt=run.attempt - (1 if run.status == RUNNING else 0))

    def _due_time(self, run: SimulationRun) -> datetime:
        """A retry is due after its back-off; a first attempt at once, and its request time
        is its place in the queue (events reach the dispatcher out of request order)."""
        if run.status == RETRYING and run.last_failed_at is not None:
            return run.last_failed_at + timedelta(seconds=self.retry.delay(run.attempt))
        return run.created_on

    def _ensure_job(self, run: SimulationRun, attempt: int, not_before: datetime) -> None:
        existing = self.outbox.find(JOB, run.id, attempt)
        if existing is None:
            value = encode(self._job(run, attempt, not_before))
            existing = self.outbox.add(JOB, run, attempt, self.jobs_topic, value, not_before)
        if existing is None or not existing.published or existing.partition is None:
            return
        if self.queue.claimed(run.id, attempt):
            return  # a worker has it (or had it and finished): it is not lost
        if not self.locator.present(existing.topic, existing.partition, existing.offset or 0,
                                    decode_job(existing.value).job_id):
            log.warning("job %s attempt %d is gone from %s; sending it again", run.id, attempt,
                        existing.topic)
            self.outbox.resend(existing)

    def _job(self, run: SimulationRun, attempt: int, not_before: datetime) -> JobMessage:
        error: str | None = None
        try:
            resolved = self.resolve(run)
        except InputUnavailable as unavailable:
            log.warning("cannot resolve the input of run %s: %s", run.id, unavailable)
            resolved, error = ResolvedInput("", "", ""), str(unavailable)
        except Exception as failure:  # one run's input must not stop every tenant's jobs
            log.exception("resolving the input of run %s failed", run.id)
            resolved = ResolvedInput("", "", "")
            error = f"the run's input could not be prepared ({type(failure).__name__})"
        return JobMessage(
            run_id=str(run.id), attempt=attempt, tenant_id=run.tenant_id, model=run.model,
            model_version=resolved.model_version, parameters=dict(run.parameters),
            input_sha256=resolved.input_sha256, input_hash=resolved.input_hash,
            enqueued_at=time.time(), not_before=not_before.timestamp(), input_error=error,
        )

    def send_due(self) -> int:
        """Send due dead letters, then a job to each free worker; returns how many were sent."""
        sent = 0
        for row in self.outbox.due(DEAD_LETTER):
            if not self._send(row, None):
                return sent
            sent += 1
        return sent + self.release()

    def release(self) -> int:
        """Give each free worker the next job in fair order; returns how many were sent.

        Jobs whose worker died go back to the front of the queue first."""
        for run_id, attempt in self.queue.orphans():
            row = self.outbox.get(JOB, run_id, attempt)
            if self._still_wanted(row):
                log.warning("job %s attempt %d lost its worker; sending it again", run_id,
                            attempt)
                self.outbox.resend(row)
        sent = 0
        free = self.queue.free_workers()
        while free:
            waiting = self.queue.next_jobs(len(free))
            if not waiting:
                return sent
            for next_job in waiting:
                row = self.outbox.get(JOB, next_job.run_id, next_job.attempt)
                if not self._still_wanted(row):
                    self.outbox.discard(row)
                    continue
                if not self._send(row, free.pop(0).partition):
                    return sent
                sent += 1
        return sent

    def _send(self, row: OutboxRow, partition: int | None) -> bool:
        try:
            acked = self.producer.send(row.topic, str(row.run_id), row.value, partition)
        except SendFailed as error:
            log.warning("sending %s of run %s failed, will retry: %s", row.kind, row.run_id,
                        error)
            self.stopping.wait(1.0)
            return False
        self.outbox.mark_sent(row, acked.partition, acked.offset)
        return True

    def _still_wanted(self, row: OutboxRow) -> bool:
        try:
            run = self.app.find_run(row.run_id)
        except NotFound:
            return False
        return not run.is_terminal and row.attempt >= run.attempt


def _wait_for_notify(listener: Any, timeout: float) -> None:
    """Until a NOTIFY on the jobs channel arrives (already queued ones count) or `timeout`."""
    listener.poll()
    if not listener.notifies and selectors.select([listener], [], [], timeout)[0]:
        listener.poll()
    listener.notifies.clear()


def _dead_letter(run: SimulationRun) -> bytes:
    return encode({
        "schema": DEAD_LETTER_SCHEMA, "run_id": str(run.id), "attempt": run.attempt,
        "tenant_id": run.tenant_id, "model": run.model, "parameters": run.parameters,
        "scenario_id": str(run.scenario_id), "scenario_version": run.scenario_version,
        "error": run.last_error, "dead_lettered_at": time.time(),
    })


def _log_position(value: bytes) -> float:
    """The event's position in the store (records that are no envelope sort last)."""
    try:
        position = json.loads(value).get("position")
    except (ValueError, AttributeError):
        return float("inf")
    return float(position) if isinstance(position, int) else float("inf")
