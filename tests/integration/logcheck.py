"""Compare what the store holds with what a topic holds."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters.envelope import encode, envelope
from adapters.kafka import TopicRecord, read_topic
from infra.wiring import Container

Key = tuple[str, int]


def payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(encode(payload)).hexdigest()


def stored_log(container: Container) -> dict[Key, str]:
    """(aggregate id, version) → payload hash, for every stored event."""
    reader, found, position = container.reader(), {}, 0
    while batch := reader.after(position, 5000):
        for notification in batch:
            document = envelope(notification, container.app.mapper)
            key = (document["aggregate_id"], document["aggregate_version"])
            found[key] = payload_hash(document["payload"])
        position = batch[-1].id
    return found


@dataclass
class TopicLog:
    records: list[TopicRecord]

    @property
    def documents(self) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in self.records]

    def deduplicated(self) -> dict[Key, str]:
        """First occurrence of each (aggregate id, version), checking per-aggregate order."""
        seen: dict[Key, str] = {}
        last_version: dict[str, int] = {}
        for record in sorted(self.records, key=lambda r: (r.partition, r.offset)):
            document = json.loads(record.value)
            aggregate, version = document["aggregate_id"], document["aggregate_version"]
            assert record.key == aggregate.encode()
            if (aggregate, version) in seen:
                continue
            expected = last_version.get(aggregate, 0) + 1
            assert version == expected, f"{aggregate}: saw version {version}, expected {expected}"
            last_version[aggregate] = version
            seen[(aggregate, version)] = payload_hash(document["payload"])
        return seen

    def exact(self) -> list[tuple[str, int, str]]:
        return sorted((d["aggregate_id"], d["aggregate_version"], payload_hash(d["payload"]))
                      for d in self.documents)


def topic_log(container: Container) -> TopicLog:
    return TopicLog(read_topic(container.bootstrap_servers, container.settings.events_topic))


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)
