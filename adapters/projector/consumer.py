"""The one place the projector's Kafka consumers are made, and a caught-up test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

ConsumerFactory = Callable[[], KafkaConsumer]


def make_consumer(bootstrap_servers: str, group_id: str | None, **overrides: Any) -> KafkaConsumer:
    """A consumer that never commits offsets to the broker (tracking is in PostgreSQL).

    Every consumer of the projector (live loop, topic rebuild, bench) is made here."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers, "group_id": group_id,
        "enable_auto_commit": False, "auto_offset_reset": "earliest",
        "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000,
        "max_poll_interval_ms": 300_000, "fetch_max_bytes": 32 * 1024 * 1024,
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
    }
    options.update(overrides)
    return KafkaConsumer(**options)


def caught_up(consumer: KafkaConsumer, assigned: list[TopicPartition]) -> bool:
    """Whether the consumer's position reached the high watermark of every partition."""
    for tp in assigned:
        highwater = consumer.highwater(tp)
        if highwater is None or consumer.position(tp) < highwater:
            return False
    return True
