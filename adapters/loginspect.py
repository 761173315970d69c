"""Read-only views of the log for operators: tail, history, state at a version, stats."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from sqlalchemy import Engine, text

from adapters.envelope import envelope, event_document, plain_json
from adapters.eventstore import EVENTS_TABLE
from adapters.relay import NotificationReader, wait_for_notify


class UnknownAggregate(LookupError):
    """No events for that aggregate id (or no such version)."""


def tail(reader: NotificationReader, app: Application[uuid.UUID], last: int,
         tenant: str | None = None, event_type: str | None = None,
         follow: threading.Event | None = None) -> Iterator[dict[str, Any]]:
    """The last `last` matching events, then (with `follow`) new ones until it is set."""
    head = reader.head()
    position = max(0, head - last) if tenant is None and event_type is None else 0
    backlog = list(_matching(reader, app, position, head, tenant, event_type))
    yield from backlog[-last:] if last else []
    position = head
    if follow is None:
        return
    listener = reader.listen()
    try:
        while not follow.is_set():
            batch = reader.after(position, 500)
            if not batch:
                wait_for_notify(listener, 5.0, follow)
                continue
            position = batch[-1].id
            for notification in batch:
                document = envelope(notification, app.mapper)
                if _wanted(document, tenant, event_type):
                    yield document
    finally:
        listener.close()


def _matching(reader: NotificationReader, app: Application[uuid.UUID], start: int, stop: int,
              tenant: str | None, event_type: str | None) -> Iterator[dict[str, Any]]:
    position = start
    while batch := reader.after(position, 2000, stop=stop):
        for notification in batch:
            document = envelope(notification, app.mapper)
            if _wanted(document, tenant, event_type):
                yield document
        position = batch[-1].id


def _wanted(document: dict[str, Any], tenant: str | None, event_type: str | None) -> bool:
    if tenant is not None and document["tenant_id"] != tenant:
        return False
    return event_type is None or event_type in (document["type"],
                                                document["type"].split(".")[-1])


def show(app: Application[uuid.UUID], aggregate_id: uuid.UUID,
         version: int | None = None) -> dict[str, Any]:
    """An aggregate's history and its state, now or as it was at `version`."""
    try:
        aggregate: Any = app.repository.get(aggregate_id, version=version)
    except AggregateNotFoundError:
        raise UnknownAggregate(f"no aggregate {aggregate_id}") from None
    if version is not None and aggregate.version != version:
        raise UnknownAggregate(f"aggregate {aggregate_id} has no version {version}")
    history = [event_document(e) for e in app.events.get(aggregate_id, lte=aggregate.version)]
    return {
        "aggregate_id": str(aggregate_id), "type": type(aggregate).__name__,
        "version": aggregate.version, "state": state_of(aggregate), "history": plain_json(history),
    }


def state_of(aggregate: object) -> dict[str, Any]:
    """An aggregate's attributes as plain JSON values."""
    fields = {k.lstrip("_"): v for k, v in vars(aggregate).items() if k != "_pending_events"}
    result: dict[str, Any] = plain_json(fields)
    return result


def stats(engine: Engine) -> dict[str, Any]:
    """Counts by type and by tenant, the store head and the relay positions."""
    with engine.connect() as connection:
        rows = connection.execute(text(
            # json, not jsonb: a payload may hold \u0000, which jsonb refuses.
            f"SELECT topic, convert_from(state, 'UTF8')::json ->> 'tenant_id' AS tenant, "
            f"count(*) FROM {EVENTS_TABLE} GROUP BY 1, 2 ORDER BY 1, 2")).all()
        head = connection.execute(text(f"SELECT coalesce(max(id), 0) FROM {EVENTS_TABLE}")
                                  ).scalar_one()
        relays = connection.execute(text(
            "SELECT name, position, updated_at FROM relay_positions ORDER BY name")).all()
    by_type: dict[str, int] = {}
    by_tenant: dict[str, int] = {}
    for topic, tenant, count in rows:
        name = topic.split(":")[-1]
        by_type[name] = by_type.get(name, 0) + count
        by_tenant[tenant or "-"] = by_tenant.get(tenant or "-", 0) + count
    return {"events": sum(by_type.values()), "store_head": int(head), "by_type": by_type,
            "by_tenant": by_tenant,
            "relays": [{"name": n, "position": int(p), "behind": int(head) - int(p),
                        "updated_at": u.isoformat()} for n, p, u in relays]}
