"""BI sync state, projected from the log, and the rules the live BI sync manager follows.

The projection only records: a replay rebuilds the sync state and calls no BI tool.
Acting (requesting, starting, triggering, polling, completing) is the live manager's job
(adapters/bi_connectors.py), which records each decision as a `BiTarget` event.
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.base import (
    Event,
    Op,
    Patch,
    Projection,
    ProjectionError,
    Put,
    Raise,
    TableSpec,
    View,
)

DATA_AGGREGATES = frozenset({"Dataset", "Scenario"})
DATA_EVENTS = frozenset({"SimulationRun.Completed"})


def changes_data(event: Event) -> bool:
    """Whether an event changes what a tenant's BI targets show."""
    return event.aggregate_type in DATA_AGGREGATES or event.type in DATA_EVENTS


class BiSync(Projection):
    """bi_targets (state per target), bi_builds (history) and tenant_data (data position)."""

    name = "bi_sync"
    on_error = "stop"
    tables = (
        TableSpec("bi_targets", ("tenant_id", "target_id")),
        TableSpec("bi_builds", ("tenant_id", "target_id", "build")),
        TableSpec("tenant_data", ("tenant_id",)),
    )

    def handles(self, event: Event) -> bool:
        """BiTarget events and data-changing events."""
        return event.aggregate_type == "BiTarget" or changes_data(event)

    def apply(self, event: Event, view: View) -> list[Op]:
        """Mark the tenant's data as changed, or record a target's decision."""
        if event.aggregate_type != "BiTarget":
            # A maximum does not depend on how partitions interleave.
            return [Raise("tenant_data", (event.tenant_id,), {"data_position": event.position})]
        handler = TARGET_HANDLERS.get(event.type)
        if handler is None:
            raise ProjectionError(f"unknown BI event {event.type}")
        return handler(event)


def _target_key(event: Event) -> tuple[str, str]:
    return (event.tenant_id, event.aggregate_id)


def _moved(event: Event, **changes: object) -> Patch:
    return Patch("bi_targets", _target_key(event),
                 {"version": event.aggregate_version, "updated_at": event.occurred_at, **changes})


def _registered(event: Event) -> list[Op]:
    p = event.payload
    return [Put("bi_targets", {
        "tenant_id": event.tenant_id, "target_id": event.aggregate_id, "name": p["name"],
        "kind": p["kind"], "trigger_url": p["trigger_url"], "status_url": p["status_url"],
        "pending": False, "running_build": None, "builds": 0, "requested_at": None,
        "started_position": 0, "completed_build": None, "completed_position": 0,
        "last_error": None, "updated_at": event.occurred_at, "version": event.aggregate_version})]


def _requested(event: Event) -> list[Op]:
    return [_moved(event, pending=True, requested_at=event.occurred_at)]


def _started(event: Event) -> list[Op]:
    p = event.payload
    return [
        _moved(event, pending=False, running_build=p["build"], builds=p["build"],
               started_position=p["position"]),
        Put("bi_builds", {"tenant_id": event.tenant_id, "target_id": event.aggregate_id,
                          "build": p["build"], "position": p["position"], "status": "running",
                          "started_at": event.occurred_at, "finished_at": None,
                          "error": None}),
    ]


def _finished(event: Event) -> list[Op]:
    p = event.payload
    key = (event.tenant_id, event.aggregate_id, p["build"])
    if event.type == "BiTarget.RebuildCompleted":
        return [_moved(event, running_build=None, completed_build=p["build"],
                       completed_position=p["position"], last_error=None),
                Patch("bi_builds", key, {"status": "completed",
                                         "finished_at": event.occurred_at})]
    return [_moved(event, running_build=None, last_error=p["error"]),
            Patch("bi_builds", key, {"status": "failed", "finished_at": event.occurred_at,
                                     "error": p["error"]})]


TARGET_HANDLERS = {
    "BiTarget.Registered": _registered,
    "BiTarget.RebuildRequested": _requested,
    "BiTarget.RebuildStarted": _started,
    "BiTarget.RebuildCompleted": _finished,
    "BiTarget.RebuildFailed": _finished,
}


# -- rules of the live manager ------------------------------------------------------------

@dataclass(frozen=True)
class TargetState:
    """What the manager knows of one target: from its aggregate and the read model."""

    pending: bool
    running: int | None
    started_position: int
    data_position: int


REQUEST, START, WATCH = "request", "start", "watch"


def next_steps(state: TargetState) -> list[str]:
    """What to do now for a target, in order.

    Data newer than the last start asks for a rebuild (coalesced while one is pending); a
    running build is watched until it ends; a pending request starts once nothing runs.
    """
    steps = []
    if state.data_position > state.started_position and not state.pending:
        steps.append(REQUEST)
    if state.running is not None:
        steps.append(WATCH)
    elif state.pending or REQUEST in steps:
        steps.append(START)
    return steps
