"""BI connectors and the live BI sync manager.

The manager is the only part that acts: it requests, starts, triggers, polls and completes
rebuilds, recording each decision as a `BiTarget` event through the application. The
`bi_sync` projection only records those events, so a replay never calls a BI tool.

A build started at log position P is triggered only once the read model has absorbed the
log up to P (the tool reads the read model), and it is complete when the tool says so.
The external tool accepts one build at a time and never notifies: it is polled.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from sqlalchemy import Engine, text

from domain.application import Cartolog
from domain.errors import DomainError
from domain.values import Actor
from projections.bi import REQUEST, START, WATCH, TargetState, next_steps

log = logging.getLogger(__name__)
MANAGER = "service:bi-sync"
RUNNING, DONE, FAILED, BUSY = "running", "done", "failed", "busy"


@dataclass(frozen=True)
class Build:
    """One build the manager is driving."""

    tenant_id: str
    target_id: uuid.UUID
    build: int
    position: int
    trigger_url: str
    status_url: str


class Connector(Protocol):
    """A kind of BI target."""

    def trigger(self, build: Build) -> str:
        """Start the build; returns a handle for polling, or BUSY to try again later."""
        ...

    def poll(self, build: Build, handle: str) -> tuple[str, str]:
        """(RUNNING | DONE | FAILED, error text)."""
        ...


class BuiltinConnector:
    """Refreshes the tenant's `bi_dashboard` table from the indicators, in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def trigger(self, build: Build) -> str:
        """Refresh now; the handle is the build number."""
        with self.engine.begin() as connection:
            connection.execute(text("DELETE FROM bi_dashboard WHERE tenant_id = :t"),
                               {"t": build.tenant_id})
            connection.execute(text(
                "INSERT INTO bi_dashboard (tenant_id, run_id, name, scenario_id, value, unit, "
                "build) SELECT tenant_id, run_id, name, scenario_id, value, unit, :b "
                "FROM indicators WHERE tenant_id = :t"), {"t": build.tenant_id, "b": build.build})
        return str(build.build)

    def poll(self, build: Build, handle: str) -> tuple[str, str]:
        """The refresh finished inside trigger()."""
        return DONE, ""


class HttpConnector:
    """An external BI tool: POST trigger_url starts a build (409 while one runs);
    GET status_url?build_id=ID answers {"state": "running" | "done" | "failed"}."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self.client = client or httpx.Client(timeout=10.0)

    def trigger(self, build: Build) -> str:
        """Ask the tool for a build."""
        response = self.client.post(build.trigger_url, json={
            "tenant_id": build.tenant_id, "target_id": str(build.target_id),
            "build": build.build, "position": build.position})
        if response.status_code == 409:
            return BUSY
        response.raise_for_status()
        return str(response.json()["build_id"])

    def poll(self, build: Build, handle: str) -> tuple[str, str]:
        """Ask the tool how the build is doing."""
        response = self.client.get(build.status_url, params={"build_id": handle})
        response.raise_for_status()
        answer = response.json()
        state = answer.get("state")
        if state in (DONE, FAILED):
            return state, str(answer.get("error") or "")
        return RUNNING, ""


Absorbed = Callable[[int], bool]


class BiSyncManager:
    """The live loop: for each target, request / start / trigger / poll / complete."""

    def __init__(self, app: Cartolog, engine: Engine, head: Callable[[], int],
                 absorbed: Absorbed, connectors: Mapping[str, Connector],
                 interval: float = 0.25) -> None:
        self.app = app
        self.engine = engine
        self.head = head
        self.absorbed = absorbed
        self.connectors = connectors
        self.interval = interval
        self.stopping = threading.Event()
        self.handles: dict[tuple[uuid.UUID, int], str] = {}

    def run(self) -> None:
        """Tick until stop()."""
        while not self.stopping.is_set():
            try:
                self.tick()
            except (DomainError, httpx.HTTPError, OSError) as error:
                log.warning("BI sync tick failed, retrying: %s", error)
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        """Return after the current tick."""
        self.stopping.set()

    def tick(self) -> None:
        """One pass over every projected target."""
        for tenant_id, target_id, data_position in self._targets():
            self._advance(tenant_id, target_id, data_position)

    def _targets(self) -> list[tuple[str, uuid.UUID, int]]:
        with self.engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT t.tenant_id, t.target_id, coalesce(d.data_position, 0) FROM bi_targets t "
                "LEFT JOIN tenant_data d ON d.tenant_id = t.tenant_id ORDER BY 1, 2")).all()
        return [(r[0], uuid.UUID(str(r[1])), int(r[2])) for r in rows]

    def _advance(self, tenant_id: str, target_id: uuid.UUID, data_position: int) -> None:
        target = self.app.get_bi_target(tenant_id, target_id)
        state = TargetState(target.pending, target.running, target.started_position,
                            data_position)
        by = Actor(MANAGER)
        for step in next_steps(state):
            if step == REQUEST:
                self.app.request_bi_rebuild(tenant_id, target_id, "data changed", by)
            elif step == START:
                self.app.start_bi_rebuild(tenant_id, target_id, self.head(), by)
            elif step == WATCH:
                self._watch(self.app.get_bi_target(tenant_id, target_id))

    def _watch(self, target: Any) -> None:
        build = Build(target.tenant_id, target.id, target.running, target.started_position,
                      target.trigger_url, target.status_url)
        connector = self.connectors[target.kind]
        key = (target.id, build.build)
        by = Actor(MANAGER)
        if key not in self.handles:
            if not self.absorbed(build.position):
                return  # the read model has not caught up with the build's position yet
            handle = connector.trigger(build)
            if handle == BUSY:
                return
            self.handles[key] = handle
        state, error = connector.poll(build, self.handles[key])
        if state == DONE:
            self.app.complete_bi_rebuild(build.tenant_id, build.target_id, build.build, by)
            self.handles.pop(key)
        elif state == FAILED:
            self.app.fail_bi_rebuild(build.tenant_id, build.target_id, build.build, error, by)
            self.handles.pop(key)
