"""What every projection is: a pure function from one event to row operations.

A projection never touches a database. It receives one `Event` (the envelope on
`cartolog.events`, docs/events.md) and a read-only `View` of its own tables, and returns
the row operations (`Put`, `Patch`, `Raise`, `Delete`) that event causes. The projector
(adapters/projector.py) batches those operations for many events, writes them with the
projection's tracking in one transaction, and de-duplicates by (aggregate id, version).

Rows must hold only values taken from events (event times, never the wall clock), so a
replay from offset zero writes the same bytes. Rows of different aggregates may arrive in
any interleaving of partitions: a column that several aggregates feed must be an
order-independent function of them (e.g. a maximum, through `Raise`).

Analysts add projections by subclassing `Projection` and registering the class under the
entry point group `cartolog.projections` (docs/projections.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from domain.ports import BlobStore

Row = dict[str, Any]
Key = tuple[Any, ...]
ErrorPolicy = Literal["stop", "record"]
ENTRY_POINT_GROUP = "cartolog.projections"


@dataclass(frozen=True)
class Event:
    """One event as published on `cartolog.events` (envelope v1)."""

    type: str
    tenant_id: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    position: int
    occurred_at: datetime
    actor: str
    correlation_id: str
    event_id: str
    payload: Mapping[str, Any]

    @staticmethod
    def from_envelope(document: Mapping[str, Any]) -> Event:
        """Decode an envelope (already parsed from JSON)."""
        return event_from_fields({
            "type": document["type"], "tenant_id": document["tenant_id"] or "",
            "aggregate_type": document["aggregate_type"],
            "aggregate_id": document["aggregate_id"],
            "aggregate_version": int(document["aggregate_version"]),
            "position": int(document["position"]),
            "occurred_at": datetime.fromisoformat(document["occurred_at"]),
            "actor": document.get("actor") or "",
            "correlation_id": document.get("correlation_id") or "",
            "event_id": document["event_id"], "payload": document.get("payload") or {},
        })


_new_object = object.__new__
_set_attribute = object.__setattr__


def event_from_fields(fields: dict[str, Any]) -> Event:
    """An `Event` holding exactly these fields, already of the right types (a replay makes
    millions of events; the frozen dataclass's own __init__ costs five times as much)."""
    event = _new_object(Event)
    _set_attribute(event, "__dict__", fields)
    return event


@dataclass(frozen=True)
class TableSpec:
    """A table a projection owns. `columns` (name → SQL type) is needed only for tables
    that no migration creates, e.g. an analyst's own; the projector creates those."""

    name: str
    key: tuple[str, ...]
    columns: Mapping[str, str] = field(default_factory=dict)

    def key_of(self, row: Mapping[str, Any]) -> Key:
        """The primary-key values of a row."""
        return tuple(row[k] for k in self.key)


@dataclass(frozen=True)
class Put:
    """Insert the row, or overwrite the given columns of the row with the same key."""

    table: str
    row: Row


@dataclass(frozen=True)
class Patch:
    """Set columns of an existing row; nothing happens when the row does not exist."""

    table: str
    key: Key
    changes: Row


@dataclass(frozen=True)
class Raise:
    """Upsert: each given column becomes the greatest of its stored and given value.

    Order-independent, so rows fed by events of several aggregates stay deterministic."""

    table: str
    key: Key
    values: Row


@dataclass(frozen=True)
class Delete:
    """Remove the row with this key, if any."""

    table: str
    key: Key


Op = Put | Patch | Raise | Delete


class View(Protocol):
    """Read access to the projection's own tables, as of the events applied so far."""

    def get(self, table: str, key: Key) -> Row | None:
        """The row with this key, or None."""
        ...


class ProjectionError(Exception):
    """An event a projection cannot apply (bad payload, missing claim-check blob...)."""


@dataclass(frozen=True)
class Context:
    """What a projection may use besides the event: the content-addressed blob store."""

    blobs: BlobStore


class Projection:
    """Base class of every projection, built-in or an analyst's."""

    name: ClassVar[str] = ""
    tables: ClassVar[Sequence[TableSpec]] = ()
    on_error: ClassVar[ErrorPolicy] = "record"

    def __init__(self, context: Context) -> None:
        self.context = context

    def handles(self, event: Event) -> bool:
        """Whether `apply` needs to see this event (others only advance the tracking)."""
        return True

    def apply(self, event: Event, view: View) -> list[Op]:
        """The row operations this event causes. Raise ProjectionError when it cannot."""
        raise NotImplementedError

    def table(self, name: str) -> TableSpec:
        """The spec of one of this projection's tables."""
        for spec in self.tables:
            if spec.name == name:
                return spec
        raise KeyError(f"projection {self.name} has no table {name}")
