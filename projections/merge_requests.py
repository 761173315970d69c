"""Merge requests as a list: one row per request, with its status, verdict and counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from projections.base import Event, Op, Patch, Projection, Put, TableSpec, View

Handler = Callable[[Event], list[Op]]


class MergeRequests(Projection):
    """The `merge_requests` table that `GET /v1/merge-requests` pages through."""

    name = "merge_requests"
    on_error = "record"
    tables = (TableSpec("merge_requests", ("tenant_id", "request_id")),)

    def handles(self, event: Event) -> bool:
        """MergeRequest events only."""
        return event.type in HANDLERS

    def apply(self, event: Event, view: View) -> list[Op]:
        """Rows for one event."""
        return HANDLERS[event.type](event)


def opened(event: Event) -> list[Op]:
    p = event.payload
    return [Put("merge_requests", {
        "tenant_id": event.tenant_id, "request_id": event.aggregate_id, "title": p["title"],
        "status": "open", "author": event.actor, "fork_id": p["fork_id"],
        "parent_id": p["parent_id"], "verdict": None, "edit_count": len(p["edits"]),
        "conflict_count": len(p["conflicts"]), "merged_version": None,
        "opened_at": event.occurred_at, "updated_at": event.occurred_at,
        "version": event.aggregate_version})]


def reviewed(event: Event) -> list[Op]:
    return [_moved(event, verdict=event.payload["verdict"])]


def resolved(event: Event) -> list[Op]:
    return [_moved(event)]


def merged(event: Event) -> list[Op]:
    return [_moved(event, status="merged", merged_version=event.payload["parent_version"])]


def closed(event: Event) -> list[Op]:
    return [_moved(event, status="closed")]


def _moved(event: Event, **changes: Any) -> Patch:
    return Patch("merge_requests", (event.tenant_id, event.aggregate_id),
                 {"version": event.aggregate_version, "updated_at": event.occurred_at,
                  **changes})


HANDLERS: dict[str, Handler] = {
    "MergeRequest.Opened": opened,
    "MergeRequest.Reviewed": reviewed,
    "MergeRequest.ConflictResolved": resolved,
    "MergeRequest.Merged": merged,
    "MergeRequest.Closed": closed,
}
