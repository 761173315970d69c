"""`cartolog log verify`: the store, the events topic and the projections must agree.

The store is the truth. The topic must hold every stored event (by aggregate id and
version) with the same payload (compared by sha256 of its canonical JSON); duplicates are
allowed (delivery is at least once) but must carry the same payload. Projection checks are
supplied by the projections area and report positions behind the topic and rows that differ
from a fresh replay.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from eventsourcing.persistence import Mapper

from adapters.envelope import encode, envelope
from adapters.kafka import TopicRecord
from adapters.relay import NotificationReader

Key = tuple[str, int]
ProjectionCheck = Callable[[], list[str]]


def payload_hash(payload: dict[str, Any]) -> str:
    """sha256 of a payload's canonical JSON."""
    return hashlib.sha256(encode(payload)).hexdigest()


def stored_payloads(reader: NotificationReader, mapper: Mapper[uuid.UUID]
                    ) -> dict[Key, tuple[int, str]]:
    """(aggregate id, version) → (position, payload hash) of every stored event."""
    found: dict[Key, tuple[int, str]] = {}
    position = 0
    while batch := reader.after(position, 5000):
        for notification in batch:
            document = envelope(notification, mapper)
            key = (document["aggregate_id"], document["aggregate_version"])
            found[key] = (notification.id, payload_hash(document["payload"]))
        position = batch[-1].id
    return found


def compare_topic(stored: dict[Key, tuple[int, str]], records: Iterable[TopicRecord]
                  ) -> list[str]:
    """Every difference between the store and the topic's records."""
    problems: list[str] = []
    seen: dict[Key, str] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        where = f"partition {record.partition} offset {record.offset}"
        try:
            document = json.loads(record.value)
            key = (document["aggregate_id"], int(document["aggregate_version"]))
            digest = payload_hash(document["payload"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"topic: unreadable record at {where}")
            continue
        expected = stored.get(key)
        if expected is None:
            problems.append(f"topic: {key[0]} v{key[1]} at {where} is not in the store")
        elif digest != expected[1]:
            problems.append(f"topic: {key[0]} v{key[1]} at {where} has a payload that differs "
                            f"from the store (position {expected[0]})")
        elif key in seen and seen[key] != digest:
            problems.append(f"topic: {key[0]} v{key[1]} at {where} repeats with another payload")
        seen.setdefault(key, digest)
    for key, (position, _) in sorted(stored.items(), key=lambda item: item[1][0]):
        if key not in seen:
            problems.append(f"topic: missing {key[0]} v{key[1]} (store position {position})")
    return problems


def verify(reader: NotificationReader, mapper: Mapper[uuid.UUID],
           records: Iterable[TopicRecord], projection_checks: Iterable[ProjectionCheck] = ()
           ) -> list[str]:
    """All discrepancies: store ↔ topic, then each projection's own checks."""
    problems = compare_topic(stored_payloads(reader, mapper), records)
    for check in projection_checks:
        problems.extend(check())
    return problems
