"""Stored events as projection `Event`s, read straight from the store for a replay.

A rebuild from the store must give projections exactly the events the topic gives them:
`Event.from_envelope(json.loads(encode(envelope(notification, mapper))))`. That path goes
through the library's mapper, builds a domain-event object, encodes the envelope and parses
it again, which is most of a replay's time. `StoredEventDecoder` reads the stored JSON
state once and builds the same `Event` directly when it can prove the result is the same:

- the event was stored at its class's current version, so no upcaster has to run;
- every custom value in the state is a UUID, datetime or Decimal (the transcodings the
  store registers), whose envelope form is its canonical string.

Anything else (an upcast event, an unknown transcoding) takes the mapper path, so the two
paths never disagree; tests/integration/projections/test_store_replay.py checks it on
every event type.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import resolve_topic
from sqlalchemy import Engine

from adapters.envelope import _HEADER_FIELDS, encode, envelope
from adapters.eventstore import EVENTS_TABLE
from adapters.projector.base import transactional
from domain.values import CARTOLOG_NAMESPACE
from projections.base import Event, event_from_fields
from projections.jsonparse import loads


class _NotPlain(Exception):
    """A value the fast path does not convert; the mapper path handles the event."""


def _plain_uuid(data: Any) -> str:
    return str(uuid.UUID(hex=data))


def _plain_datetime(data: Any) -> str:
    return datetime.fromisoformat(data).isoformat()


def _plain_decimal(data: Any) -> str:
    return str(Decimal(data))


_TRANSCODED = {"uuid_hex": _plain_uuid, "datetime_iso": _plain_datetime,
               "decimal_str": _plain_decimal}


_CONTAINERS = (dict, list)


def _plain(value: Any) -> Any:
    """The envelope form of a stored value: custom types as strings, keys sorted."""
    if isinstance(value, dict):
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            convert = _TRANSCODED.get(value["_type_"])
            if convert is None:
                raise _NotPlain(value["_type_"])
            return convert(value["_data_"])
        return {k: _plain(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


_NAMESPACE = CARTOLOG_NAMESPACE.bytes


def _event_id(aggregate_id: str, version: int) -> str:
    """`envelope.event_id` (a UUID5) without building UUID objects: same string."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + f"event:{aggregate_id}:{version}".encode(),
                                    usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class StoredEventDecoder:
    """Stored event rows → `Event`s, equal to what the events topic carries."""

    def __init__(self, mapper: Mapper[uuid.UUID]) -> None:
        self.mapper = mapper
        self._classes: dict[str, tuple[str, int]] = {}

    def decode(self, position: int, originator_id: Any, version: int, topic: str,
               state: bytes) -> Event:
        """One stored event as a projection event."""
        qualname, class_version = self._class(topic)
        try:
            return self._fast(position, str(originator_id), version, qualname, class_version,
                              state)
        except _NotPlain:
            return self._slow(position, originator_id, version, topic, state)

    def _class(self, topic: str) -> tuple[str, int]:
        found = self._classes.get(topic)
        if found is None:
            cls = resolve_topic(topic)
            found = self._classes[topic] = (cls.__qualname__, getattr(cls, "class_version", 1))
        return found

    def _fast(self, position: int, aggregate_id: str, version: int, qualname: str,
              class_version: int, state: bytes) -> Event:
        fields = loads(state)
        if fields.pop("class_version", 1) != class_version:
            raise _NotPlain("class_version")  # an upcaster has to run
        stamp = fields["timestamp"]
        if not (isinstance(stamp, dict) and stamp.get("_type_") == "datetime_iso"):
            raise _NotPlain("timestamp")
        payload = {k: _plain(v) if type(v) in _CONTAINERS else v
                   for k, v in sorted(fields.items()) if k not in _HEADER_FIELDS}
        return event_from_fields({
            "type": qualname, "tenant_id": fields.get("tenant_id") or "",
            "aggregate_type": qualname.split(".")[0], "aggregate_id": aggregate_id,
            "aggregate_version": version, "position": position,
            "occurred_at": datetime.fromisoformat(stamp["_data_"]),
            "actor": fields.get("actor") or "",
            "correlation_id": fields.get("correlation_id") or "",
            "event_id": _event_id(aggregate_id, version), "payload": payload})

    def _slow(self, position: int, originator_id: Any, version: int, topic: str,
              state: bytes) -> Event:
        notification = Notification(id=position, originator_id=uuid.UUID(str(originator_id)),
                                    originator_version=version, topic=topic, state=state)
        return Event.from_envelope(json.loads(encode(envelope(notification, self.mapper))))


def stored_events(engine: Engine, mapper: Mapper[uuid.UUID], head: int, size: int = 5000,
                  table: str = EVENTS_TABLE) -> Iterator[list[Event]]:
    """Every stored event with 0 < position <= head, in notification order, in lists of
    about `size`, from one server-side cursor (one consistent snapshot, constant memory)."""
    decoder = StoredEventDecoder(mapper)
    connection: Any = transactional(engine)  # a named cursor needs a transaction
    try:
        cursor = connection.cursor(name=f"replay_{uuid.uuid4().hex[:12]}")
        cursor.itersize = size
        cursor.execute(f"SELECT id, originator_id::text, originator_version, topic, state "
                       f"FROM {table} WHERE id <= %s ORDER BY id", (head,))
        decode = decoder.decode
        while True:
            rows = cursor.fetchmany(size)
            if not rows:
                break
            yield [decode(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]
        cursor.close()
        connection.commit()
    finally:
        connection.close()
