"""Kafka clients (kafka-python): every producer, consumer and admin client is built here.

`make_producer`, `make_consumer` (group member or group-less reader), `group_consumer`
(subscribed member) and `admin_client` carry the project's settings; callers override only
what their role needs. `caught_up` is the one test of having read a topic to its end.

Works against any Kafka-protocol broker. Where the bundled broker deviates from Kafka
(notes/broker.md), the code takes the path that is correct on both: lag and end of a
topic come from fetch high watermarks, never from ListOffsets(latest).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

# The producer refuses a record larger than this (kafka-python's max_request_size). The
# store refuses events over domain.rules.MAX_EVENT_BYTES, well below it, so every event
# appended can be published.
MAX_REQUEST_SIZE = 4 * 1024 * 1024

def make_producer(bootstrap_servers: str, **overrides: Any) -> KafkaProducer:
    """An idempotent producer: acks=all, retries, at most 5 requests in flight."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_request_size": MAX_REQUEST_SIZE,
        "compression_type": None,
        "retries": 5,
        "request_timeout_ms": 15_000,
    }
    options.update(overrides)
    return KafkaProducer(**options)


def admin_client(bootstrap_servers: str, request_timeout_ms: int = 10_000) -> KafkaAdminClient:
    """An admin client with short timeouts, for start-up and operator commands."""
    return KafkaAdminClient(bootstrap_servers=bootstrap_servers,
                            request_timeout_ms=request_timeout_ms)


def make_consumer(bootstrap_servers: str, group_id: str | None = None,
                  **overrides: Any) -> KafkaConsumer:
    """A consumer that never auto-commits and starts at the earliest offset it has none for.

    With `group_id=None` it is a group-less reader (assign and seek by hand). Group members
    get short session and heartbeat intervals: the bundled broker holds JoinGroup for half
    the session timeout, and a lost member's partitions move after about that long.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers, "group_id": group_id,
        "enable_auto_commit": False, "auto_offset_reset": "earliest",
        "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000,
        "max_poll_interval_ms": 300_000, "request_timeout_ms": 30_000,
        # kafka-python's default is 500 ms; the bundled broker holds an empty fetch for its
        # whole wait, so that is what a record waits at worst (decision 0304).
        "fetch_max_wait_ms": 250,
    }
    options.update(overrides)
    return KafkaConsumer(**options)


def group_consumer(bootstrap_servers: str, group_id: str, topics: list[str],
                   **overrides: Any) -> KafkaConsumer:
    """A group member with manual commits, subscribed to `topics` (if any).

    A fetch waits at most 50 ms unless overridden: the bundled broker holds an empty fetch
    for its full max wait even when a record arrives meanwhile.
    """
    consumer = make_consumer(bootstrap_servers, group_id,
                             **{"fetch_max_wait_ms": 50, **overrides})
    if topics:
        consumer.subscribe(topics)
    return consumer


def caught_up(consumer: KafkaConsumer, assigned: list[TopicPartition]) -> bool:
    """True once the consumer's position reached each partition's fetched high watermark."""
    for tp in assigned:
        highwater = consumer.highwater(tp)
        if highwater is None or consumer.position(tp) < highwater:
            return False
    return True


def ensure_topics(
    bootstrap_servers: str, partitions: Mapping[str, int], replication_factor: int = 1
) -> list[str]:
    """Create the missing topics with the given partition counts; returns those created."""
    admin = admin_client(bootstrap_servers)
    with contextlib.closing(admin):
        existing = set(admin.list_topics())
        missing = [NewTopic(name, count, replication_factor)
                   for name, count in partitions.items() if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        return [t.name for t in missing]


def delete_topics(bootstrap_servers: str, names: Iterable[str]) -> None:
    """Delete topics; missing ones are ignored."""
    admin = admin_client(bootstrap_servers)
    with contextlib.closing(admin):
        existing = set(admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            with contextlib.suppress(UnknownTopicOrPartitionError):
                admin.delete_topics(doomed)


@dataclass(frozen=True)
class TopicRecord:
    """One record read back from a topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int = -1  # the record's timestamp (the producer's send time by default)


def read_topic(bootstrap_servers: str, topic: str, timeout: float = 60.0) -> list[TopicRecord]:
    """Every record now in `topic`, all partitions, read up to each high watermark."""
    consumer = make_consumer(bootstrap_servers, fetch_max_bytes=32 * 1024 * 1024,
                             max_poll_records=10_000)
    with contextlib.closing(consumer):
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        return _drain(consumer, assigned, timeout)


def _drain(
    consumer: KafkaConsumer, assigned: list[TopicPartition], timeout: float
) -> list[TopicRecord]:
    records: list[TopicRecord] = []
    deadline = time.monotonic() + timeout
    while not caught_up(consumer, assigned):
        if time.monotonic() > deadline:
            raise KafkaError(f"reading {assigned[0].topic} did not reach its end in {timeout}s")
        for tp, batch in consumer.poll(timeout_ms=500).items():
            records.extend(TopicRecord(tp.partition, r.offset, r.key, r.value, r.timestamp)
                       for r in batch)
    return records


def high_watermarks(bootstrap_servers: str, topic: str, timeout: float = 15.0) -> dict[int, int]:
    """Partition → high watermark (end offset), read from fetch responses.

    The bundled broker answers ListOffsets(latest) wrongly for multi-record batches
    (notes/broker.md); a fetch's high watermark is right on every broker.
    """
    consumer = make_consumer(bootstrap_servers, max_poll_records=1, fetch_max_bytes=1024)
    with contextlib.closing(consumer):
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return {}
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        deadline = time.monotonic() + timeout
        while any(consumer.highwater(tp) is None for tp in assigned):
            if time.monotonic() > deadline:
                raise KafkaError(f"no high watermark for {topic} after {timeout}s")
            for tp in assigned:  # keep fetching from offset 0 without consuming far
                consumer.seek(tp, 0)
            consumer.poll(timeout_ms=300)
        return {tp.partition: int(consumer.highwater(tp) or 0) for tp in assigned}


def group_offsets(bootstrap_servers: str) -> dict[str, dict[tuple[str, int], int]]:
    """Consumer group → (topic, partition) → committed offset."""
    admin = admin_client(bootstrap_servers)
    with contextlib.closing(admin):
        groups = [_group_name(g) for g in admin.list_groups()]
        found: dict[str, dict[tuple[str, int], int]] = {}
        for group in groups:
            offsets = admin.list_group_offsets(group)
            offsets = offsets.get(group, offsets)  # keyed by group in kafka-python 3
            found[group] = {(tp.topic, tp.partition): meta.offset
                            for tp, meta in offsets.items() if meta.offset >= 0}
        return found


def _group_name(listed: Any) -> str:
    if isinstance(listed, dict):
        return str(listed.get("group_id") or listed.get("group"))
    if isinstance(listed, tuple):
        return str(listed[0])
    return str(listed.group_id)
