"""The live projector loop: consume the events topic, apply per projection, repeat."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from psycopg2.extras import execute_values

from adapters.projector.base import Connection, Record
from adapters.projector.consumer import ConsumerFactory
from adapters.projector.runner import ProjectionRunner

log = logging.getLogger(__name__)


class _Seeker(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, start each partition at the lowest offset any projection still needs."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    def on_partitions_revoked(self, revoked: Any) -> None:
        """Nothing to commit: progress is in PostgreSQL."""

    def on_partitions_assigned(self, assigned: Any) -> None:
        """Seek to the tracked offsets."""
        self.projector.seek_to_tracking(list(assigned))


class Projector:
    """The `cartolog projector` loop: consume, apply per projection, track, repeat."""

    def __init__(self, runners: Sequence[ProjectionRunner], make_consumer: ConsumerFactory,
                 topic: str, max_records: int = 5000, analyze_rows: int = 10_000) -> None:
        self.runners = list(runners)
        self.analyze_rows = analyze_rows  # ANALYZE a table after a batch writes this many rows
        self.make_consumer = make_consumer
        self.topic = topic
        self.max_records = max_records
        self.stopping = threading.Event()
        self.consumer: KafkaConsumer | None = None
        self.lag: dict[int, int] = {}
        self.failure: str | None = None
        self._highwater_saved = 0.0

    def run(self) -> None:
        """Consume until stop(); each batch is committed in PostgreSQL before the next poll.

        An error that escapes (the database or the broker gone) is recorded as each
        projection's `crashed` state before it propagates: never a silent death."""
        try:
            for runner in self.runners:
                runner.mark_running()
            self._consume()
        except Exception as error:
            self.failure = f"projector died: {type(error).__name__}: {error}"
            log.exception("projector died")
            self._record_crash(self.failure)
            raise

    def _consume(self) -> None:
        consumer = self.consumer = self.make_consumer()
        try:
            consumer.subscribe([self.topic], listener=_Seeker(self))
            while not self.stopping.is_set():
                self.step(consumer)
        finally:
            consumer.close()
            self.consumer = None

    def _record_crash(self, failure: str) -> None:
        for runner in self.runners:
            try:
                runner.mark_crashed(failure)
            except Exception:  # the database may be what failed; the log has the error
                log.exception("projector: could not record the crash of %s", runner.name)

    def stop(self) -> None:
        """Finish the current batch and return."""
        self.stopping.set()

    def step(self, consumer: KafkaConsumer) -> None:
        """One poll and its transactions."""
        polled = consumer.poll(timeout_ms=500, max_records=self.max_records)
        records = [Record(tp.topic, tp.partition, r.offset, r.value)
                   for tp, batch in polled.items() for r in batch]
        highwaters = self._highwaters(consumer)
        reseek: dict[tuple[str, int], int] = {}
        for runner in self.runners:
            outcome = runner.process(records, highwaters)
            if runner.analyze_after(outcome.written, self.analyze_rows):
                log.info("projector: %s analyzed %s after a large write", runner.name,
                         ", ".join(n for n, r in outcome.written.items()
                                   if r >= self.analyze_rows))
            for tp, offset in outcome.reseek.items():
                reseek[tp] = min(offset, reseek.get(tp, offset))
        for (topic, partition), offset in reseek.items():
            log.info("projector: %s[%d] goes back to tracked offset %d", topic, partition, offset)
            consumer.seek(TopicPartition(topic, partition), offset)
        if not records and self._idle_check_due():
            self._save_highwaters(highwaters)
            self._rewind(consumer)

    def seek_to_tracking(self, assigned: list[TopicPartition]) -> None:
        """Seek each partition to the minimum next offset of the projections still running."""
        consumer = self.consumer
        if consumer is None:
            return
        live = [r for r in self.runners if not r.stopped] or self.runners
        offsets = [r.tracked_offsets(self.topic) for r in live]
        for tp in assigned:
            needed = [o.get(tp.partition) for o in offsets]
            if any(n is None for n in needed):
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, min(n for n in needed if n is not None))

    def _highwaters(self, consumer: KafkaConsumer) -> dict[tuple[str, int], int]:
        found: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)  # correct on every broker; end_offsets is not
            if highwater is not None:
                found[(tp.topic, tp.partition)] = int(highwater)
                self.lag[tp.partition] = max(int(highwater) - consumer.position(tp), 0)
        return found

    def _idle_check_due(self) -> bool:
        now = time.monotonic()
        if now - self._highwater_saved < 2.0:
            return False
        self._highwater_saved = now
        return True

    def _rewind(self, consumer: KafkaConsumer) -> None:
        """Go back where a projection's tracking moved below the consumer (a rebuild was
        swapped in): without it, that projection would wait for the next record."""
        live = [r for r in self.runners if not (r.stopped and r.load_stopped())]
        offsets = [r.tracked_offsets(self.topic) for r in live]
        for tp in consumer.assignment():
            needed = [o[tp.partition] for o in offsets if tp.partition in o]
            if needed and min(needed) < consumer.position(tp):
                log.info("projector: %s[%d] goes back to tracked offset %d", tp.topic,
                         tp.partition, min(needed))
                consumer.seek(tp, min(needed))

    def _save_highwaters(self, highwaters: Mapping[tuple[str, int], int]) -> None:
        if not highwaters:
            return
        for runner in self.runners:
            with Connection(runner.engine) as connection, connection.cursor() as cursor:
                execute_values(
                    cursor,
                    "UPDATE projection_tracking AS t SET highwater = v.h FROM (VALUES %s) AS "
                    "v(p, topic, part, h) WHERE t.projection = v.p AND t.topic = v.topic "
                    "AND t.partition = v.part",
                    [(runner.tracking_name, t, p, h) for (t, p), h in highwaters.items()])

