"""The projector's Kafka consumers: `adapters.kafka`'s, with larger fetches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer

from adapters import kafka
from adapters.kafka import caught_up

__all__ = ["ConsumerFactory", "caught_up", "make_consumer"]

ConsumerFactory = Callable[[], KafkaConsumer]


def make_consumer(bootstrap_servers: str, group_id: str | None, **overrides: Any) -> KafkaConsumer:
    """A consumer that never commits offsets to the broker (tracking is in PostgreSQL), with
    fetches large enough for replays. Every consumer of the projector is made here."""
    return kafka.make_consumer(bootstrap_servers, group_id, fetch_max_bytes=32 * 1024 * 1024,
                               max_partition_fetch_bytes=8 * 1024 * 1024, **overrides)
