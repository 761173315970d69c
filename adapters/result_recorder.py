"""The result recorder: result messages become SimulationRun events, each at most once.

A result is recorded only if its run is still running the attempt that produced it; the
domain refuses anything else. So a redelivered result, a result of an older attempt, or one
that arrives after the run was cancelled changes nothing, and every run ends in exactly one
terminal state. Offsets are committed after the events are stored.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert

from adapters.jobs import COMPLETED, FAILED, ResultMessage, commit_one, decode_result
from adapters.jobs_tables import result_cache
from domain.application import Cartolog
from domain.errors import InvalidTransition, NotFound, VersionConflict
from domain.simulation import RUNNING
from domain.values import Actor

log = logging.getLogger(__name__)
RECORDER = Actor(sub="service:recorder")


class ResultCache:
    """First completed result per reuse key (input hash, model version, parameters)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def remember(self, result: ResultMessage) -> None:
        """Keep a computed result for reuse (the first one per key wins)."""
        if result.reuse_key is None or result.result_sha256 is None or result.reused_from:
            return
        statement = insert(result_cache).values(
            tenant_id=result.tenant_id, reuse_key=result.reuse_key,
            run_id=uuid.UUID(result.run_id), result_sha256=result.result_sha256,
            indicators=result.indicators,
        ).on_conflict_do_nothing(index_elements=["tenant_id", "reuse_key"])
        with self.engine.begin() as connection:
            connection.execute(statement)

    def lookup(self, tenant_id: str, reuse_key: str) -> dict[str, Any] | None:
        """The earlier result for this key: run_id, result_sha256, indicators."""
        query = select(result_cache.c.run_id, result_cache.c.result_sha256,
                       result_cache.c.indicators).where(
            result_cache.c.tenant_id == tenant_id, result_cache.c.reuse_key == reuse_key)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return {"run_id": str(row.run_id), "result_sha256": row.result_sha256,
                "indicators": dict(row.indicators)}


class ResultRecorder:
    """Reads the results topic (group `cartolog-recorder`) and records each result once."""

    def __init__(self, app: Cartolog, cache: ResultCache,
                 consumer_factory: Callable[[], KafkaConsumer]) -> None:
        self.app = app
        self.cache = cache
        self.consumer_factory = consumer_factory
        self.stopping = threading.Event()
        self.recorded = 0
        self.ignored = 0

    def run(self) -> None:
        """Record until stop()."""
        consumer = self.consumer_factory()
        try:
            while not self.stopping.is_set():
                try:
                    self._step(consumer)
                except KafkaError as error:
                    log.warning("reading results failed, retrying: %r", error)
                    self.stopping.wait(1.0)
        finally:
            consumer.close()

    def stop(self) -> None:
        """Finish the current batch and return."""
        self.stopping.set()

    def _step(self, consumer: KafkaConsumer) -> None:
        for tp, records in consumer.poll(timeout_ms=300, max_records=200).items():
            for record in records:
                self._handle(record.value, tp, record.offset)
            commit_one(consumer, tp, records[-1].offset + 1)

    def _handle(self, value: bytes, tp: TopicPartition, offset: int) -> None:
        try:
            result = decode_result(value)
        except (ValueError, TypeError) as error:
            log.error("bad result message at %s:%d@%d: %s", tp.topic, tp.partition, offset,
                      error)
            return
        if self.record(result):
            self.recorded += 1
        else:
            self.ignored += 1

    def record(self, result: ResultMessage) -> bool:
        """Record one result; False when it is stale or a duplicate."""
        for _ in range(5):
            try:
                return self._record_once(result)
            except VersionConflict:
                continue  # the run moved on meanwhile: look again
            except InvalidTransition as error:
                log.info("ignoring result of run %s attempt %d: %s", result.run_id,
                         result.attempt, error)
                return False
        return False

    def _record_once(self, result: ResultMessage) -> bool:
        try:
            run = self.app.find_run(uuid.UUID(result.run_id))
        except NotFound:
            return False
        current = run.status == RUNNING and run.attempt == result.attempt
        if run.tenant_id != result.tenant_id or not current:
            return False
        if result.outcome == COMPLETED and result.result_sha256 is not None:
            self.app.complete_run(run.tenant_id, run.id, result.attempt, result.result_sha256,
                                  result.indicators, result.duration_s, RECORDER,
                                  result.reused_from)
            self.cache.remember(result)
            return True
        if result.outcome == FAILED:
            self.app.fail_attempt(run.tenant_id, run.id, result.attempt,
                                  result.error or "failed", result.traceback or "", RECORDER)
            return True
        return False
