"""The versioned JSON envelope of every event on `cartolog.events` (docs/events.md)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import Mapper, Notification

from domain.values import CARTOLOG_NAMESPACE

ENVELOPE_VERSION = 1
_HEADER_FIELDS = frozenset({
    "originator_id", "originator_version", "timestamp", "originator_topic",
    "tenant_id", "actor", "correlation_id",
})


def event_id(aggregate_id: uuid.UUID, version: int) -> str:
    """Deterministic: republishing an event gives it the same id."""
    return str(uuid.uuid5(CARTOLOG_NAMESPACE, f"event:{aggregate_id}:{version}"))


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} in an event envelope")


def event_document(event: Any) -> dict[str, Any]:
    """The envelope fields one domain event determines by itself (all but `position`)."""
    cls = type(event)
    fields = vars(event)
    return {
        "envelope_version": ENVELOPE_VERSION,
        "event_id": event_id(event.originator_id, event.originator_version),
        "type": cls.__qualname__,
        "schema_version": getattr(cls, "class_version", 1),
        "tenant_id": fields.get("tenant_id"),
        "aggregate_type": cls.__qualname__.split(".")[0],
        "aggregate_id": str(event.originator_id),
        "aggregate_version": event.originator_version,
        "occurred_at": fields["timestamp"].isoformat(),
        "actor": fields.get("actor"),
        "correlation_id": fields.get("correlation_id"),
        "payload": {k: v for k, v in fields.items() if k not in _HEADER_FIELDS},
    }


def envelope(notification: Notification, mapper: Mapper[uuid.UUID]) -> dict[str, Any]:
    """The envelope of one stored event, upcast to the current schema of its type."""
    document = event_document(mapper.to_domain_event(notification))
    document["position"] = notification.id
    return document


def plain_json(value: Any) -> Any:
    """`value` with UUIDs, datetimes and decimals turned into JSON types."""
    return json.loads(json.dumps(value, default=_plain))


def encode(document: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON bytes (stable, so payloads hash the same on republish)."""
    return json.dumps(document, default=_plain, sort_keys=True, separators=(",", ":")).encode()


def message(notification: Notification, mapper: Mapper[uuid.UUID]) -> tuple[bytes, bytes]:
    """Kafka key (aggregate id) and value (the encoded envelope) of a stored event."""
    return str(notification.originator_id).encode(), encode(envelope(notification, mapper))
