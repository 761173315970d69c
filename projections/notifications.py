"""Notifications for the API's Server-Sent Events: runs finished or failed, BI rebuilds."""

from __future__ import annotations

from projections.base import Event, Op, Projection, Put, TableSpec, View
from projections.jsonb import storable

TITLES = {
    "SimulationRun.Completed": ("simulation.completed", "Simulation finished"),
    "SimulationRun.DeadLettered": ("simulation.failed", "Simulation failed"),
    "BiTarget.RebuildCompleted": ("bi.rebuild_completed", "BI rebuild finished"),
    "BiTarget.RebuildFailed": ("bi.rebuild_failed", "BI rebuild failed"),
}


class Notifications(Projection):
    """One row per notifiable event, ordered by log position within a tenant."""

    name = "notifications"
    on_error = "record"
    tables = (TableSpec("notifications", ("tenant_id", "event_id")),)

    def handles(self, event: Event) -> bool:
        """Only the events users are told about."""
        return event.type in TITLES

    def apply(self, event: Event, view: View) -> list[Op]:
        """One notification row."""
        kind, title = TITLES[event.type]
        details = storable({k: v for k, v in event.payload.items() if k not in ("traceback",)})
        return [Put("notifications", {
            "tenant_id": event.tenant_id, "event_id": event.event_id,
            "position": event.position, "kind": kind, "subject_id": event.aggregate_id,
            "subject_version": event.aggregate_version, "title": title, "details": details,
            "occurred_at": event.occurred_at})]
