"""Simulation job and result messages (docs/jobs.md), and the Kafka clients that carry them.

Every producer here waits for the broker's acknowledgement of each message it sends, and is
thrown away and rebuilt after any error: an idempotent producer is fenced for good when the
broker restarts empty (notes/broker.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from adapters.kafka import admin_client, high_watermarks
from domain.values import CARTOLOG_NAMESPACE

log = logging.getLogger(__name__)

JOB_SCHEMA = "cartolog.simulation-job/1"
RESULT_SCHEMA = "cartolog.simulation-result/1"
DEAD_LETTER_SCHEMA = "cartolog.simulation-dead-letter/1"
WORKER_GROUP = "cartolog-workers"
RECORDER_GROUP = "cartolog-recorder"
DISPATCHER_GROUP = "cartolog-dispatcher"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"


def job_id(run_id: uuid.UUID | str, attempt: int) -> str:
    """Deterministic id of one attempt's job: a re-sent job keeps its id."""
    return str(uuid.uuid5(CARTOLOG_NAMESPACE, f"job:{run_id}:{attempt}"))


@dataclass(frozen=True)
class JobMessage:
    """One attempt of one run, on the jobs topic (key: run id)."""

    run_id: str
    attempt: int
    tenant_id: str
    model: str
    model_version: str
    parameters: dict[str, Any]
    input_sha256: str
    input_hash: str
    enqueued_at: float
    not_before: float = 0.0
    input_error: str | None = None
    job_id: str = ""
    schema: str = JOB_SCHEMA

    def __post_init__(self) -> None:
        if not self.job_id:
            object.__setattr__(self, "job_id", job_id(self.run_id, self.attempt))

    @property
    def reuse_key(self) -> str:
        """Input hash, model version and parameters: equal keys give equal results."""
        parameters = {k: v for k, v in self.parameters.items() if k != "reuse"}
        return json.dumps([self.input_hash, self.model, self.model_version, parameters],
                          sort_keys=True, separators=(",", ":"))

    @property
    def reuse_allowed(self) -> bool:
        """Whether the request lets an earlier equal result stand in (default yes)."""
        return bool(self.parameters.get("reuse", True))


@dataclass(frozen=True)
class ResultMessage:
    """What one attempt produced, on the results topic (key: run id)."""

    run_id: str
    attempt: int
    tenant_id: str
    outcome: str  # completed, failed or cancelled
    worker: str
    duration_s: float = 0.0
    compute_s: float = 0.0
    result_sha256: str | None = None
    indicators: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    reused_from: str | None = None
    reuse_key: str | None = None
    job_id: str = ""
    schema: str = RESULT_SCHEMA


def encode(message: JobMessage | ResultMessage | dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON."""
    document = message if isinstance(message, dict) else asdict(message)
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def decode_job(value: bytes) -> JobMessage:
    """A job message; ValueError when it is not one."""
    document = json.loads(value)
    if document.get("schema") != JOB_SCHEMA:
        raise ValueError(f"not a {JOB_SCHEMA} message")
    return JobMessage(**document)


def decode_result(value: bytes) -> ResultMessage:
    """A result message; ValueError when it is not one."""
    document = json.loads(value)
    if document.get("schema") != RESULT_SCHEMA:
        raise ValueError(f"not a {RESULT_SCHEMA} message")
    return result_message(document)


def result_message(document: dict[str, Any]) -> ResultMessage:
    """A result message from its fields; fields it does not know (a newer worker's) are
    ignored, so adding one never breaks an older recorder."""
    known = ResultMessage.__dataclass_fields__
    return ResultMessage(**{k: v for k, v in document.items() if k in known})


class SendFailed(RuntimeError):
    """The broker did not acknowledge a message."""


@dataclass(frozen=True)
class Acked:
    """Where the broker stored an acknowledged message."""

    partition: int
    offset: int


class AckedProducer:
    """Sends one message at a time and returns only once the broker acknowledged it."""

    def __init__(self, make_producer: Callable[[], KafkaProducer], timeout: float = 30.0):
        self.make_producer = make_producer
        self.timeout = timeout
        self._producer: KafkaProducer | None = None

    def send(self, topic: str, key: str, value: bytes, partition: int | None = None) -> Acked:
        """Send and wait for the acknowledgement; SendFailed (and a new producer) otherwise.

        Without `partition` the key's hash picks it; the dispatcher names the partition of
        the worker it gives a job to.
        """
        producer = self._producer or self._new()
        try:
            future = producer.send(topic, key=key.encode(), value=value, partition=partition)
            metadata = future.get(self.timeout)
        except KafkaError as error:
            self.reset()
            raise SendFailed(f"{topic}: {error!r}") from error
        return Acked(metadata.partition, metadata.offset)

    def _new(self) -> KafkaProducer:
        self._producer = self.make_producer()
        return self._producer

    def reset(self) -> None:
        """Drop the producer; the next send builds a new one."""
        if self._producer is not None:
            with contextlib.suppress(KafkaError):
                self._producer.close(timeout=1)
            self._producer = None

    close = reset


def commit_one(consumer: KafkaConsumer, tp: TopicPartition, next_offset: int) -> bool:
    """Commit `next_offset` for one partition; False if the group moved it elsewhere."""
    from kafka.structs import OffsetAndMetadata

    try:
        consumer.commit({tp: OffsetAndMetadata(next_offset, "", -1)})
    except KafkaError as error:
        log.warning("commit of %s:%d at %d failed: %r", tp.topic, tp.partition, next_offset,
                    error)
        return False
    return True


def group_lag(bootstrap_servers: str, group_id: str, topic: str,
              timeout: float = 10.0) -> dict[int, int]:
    """Partition → messages not yet committed by the group (high watermark minus committed).

    High watermarks come from a fetch, never from ListOffsets(latest) (wrong on the bundled
    broker, notes/broker.md).
    """
    admin = admin_client(bootstrap_servers)
    with contextlib.closing(admin):
        committed = admin.list_group_offsets(group_id).get(group_id, {})
    ends = high_watermarks(bootstrap_servers, topic, timeout)
    return {p: max(0, end - _committed(committed, topic, p)) for p, end in ends.items()}


def _committed(committed: dict[TopicPartition, Any], topic: str, partition: int) -> int:
    meta = committed.get(TopicPartition(topic, partition))
    return max(0, int(meta.offset)) if meta is not None else 0
