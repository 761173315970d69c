"""BiTarget: a tenant's BI target (built-in dashboard tables or an external BI tool).

Rebuild requests are coalesced: at most one pending and one running build per target. A
build records the log position it was started at; it is complete when the target has
absorbed the log up to that position. Every decision is an event, so replaying the log
reproduces the sync state without acting on any BI tool again.
"""

from __future__ import annotations

import uuid

from domain import rules
from domain.base import TenantAggregate
from domain.errors import InvalidCommand, InvalidTransition
from domain.values import CARTOLOG_NAMESPACE, Actor

BUILTIN, EXTERNAL = "builtin", "external"
TARGET_KINDS = (BUILTIN, EXTERNAL)


def bi_target_id(tenant_id: str, name: str) -> uuid.UUID:
    """A target's id is derived from its tenant and name, so a name is registered once."""
    return uuid.uuid5(CARTOLOG_NAMESPACE, f"bi-target:{tenant_id}:{name}")


class BiTarget(TenantAggregate):
    """One BI target and the state of its rebuilds."""

    class Registered(TenantAggregate.Created):
        name: str
        kind: str
        trigger_url: str
        status_url: str

    def __init__(self, tenant_id: str, name: str, kind: str, trigger_url: str,
                 status_url: str) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.kind = kind
        self.trigger_url = trigger_url
        self.status_url = status_url
        self.pending = False
        self.running: int | None = None
        self.builds = 0
        self.started_position = 0
        self.completed_position = 0

    @classmethod
    def register(cls, tenant_id: str, name: str, kind: str, by: Actor, trigger_url: str = "",
                 status_url: str = "") -> BiTarget:
        """A new target; an external one needs its trigger and status URLs."""
        if kind not in TARGET_KINDS:
            raise InvalidCommand(f"unknown BI target kind {kind!r}; choose builtin or external")
        if kind == EXTERNAL and not (trigger_url and status_url):
            raise InvalidCommand("an external BI target needs a trigger URL and a status URL")
        found = rules.collect(
            rules.label_problem("BI target", name, rules.MAX_ID),
            *(rules.url_problem(what, url) for what, url in
              (("trigger_url", trigger_url), ("status_url", status_url)) if url))
        if found:
            raise InvalidCommand("the BI target was rejected", found)
        return cls._start(cls.Registered, bi_target_id(tenant_id, name), tenant_id, by,
                          name=name, kind=kind, trigger_url=trigger_url, status_url=status_url)

    class RebuildRequested(TenantAggregate.Event):
        reason: str

        def apply(self, target: BiTarget) -> None:
            target.pending = True

    class RebuildStarted(TenantAggregate.Event):
        build: int
        position: int

        def apply(self, target: BiTarget) -> None:
            target.pending = False
            target.running = self.build
            target.builds = self.build
            target.started_position = self.position

    class RebuildCompleted(TenantAggregate.Event):
        build: int
        position: int

        def apply(self, target: BiTarget) -> None:
            target.running = None
            target.completed_position = self.position

    class RebuildFailed(TenantAggregate.Event):
        build: int
        error: str

        def apply(self, target: BiTarget) -> None:
            target.running = None

    def request_rebuild(self, reason: str, by: Actor) -> bool:
        """Ask for a rebuild; False when one is already pending (the request is coalesced)."""
        problem = rules.text_problem("a rebuild reason", reason)
        if problem:
            raise InvalidCommand(problem)
        if self.pending:
            return False
        self._emit(BiTarget.RebuildRequested, by, reason=reason)
        return True

    def start_rebuild(self, position: int, by: Actor) -> int:
        """Start the pending rebuild, to absorb the log up to `position`; its build number."""
        if not self.pending or self.running is not None:
            raise InvalidTransition(
                f"BI target {self.name!r} has {'no pending' if not self.pending else 'a running'}"
                " rebuild")
        self._emit(BiTarget.RebuildStarted, by, build=self.builds + 1, position=position)
        return self.builds

    def complete_rebuild(self, build: int, by: Actor) -> None:
        """The running build absorbed the log up to its start position."""
        self._check_running(build)
        self._emit(BiTarget.RebuildCompleted, by, build=build, position=self.started_position)

    def fail_rebuild(self, build: int, error: str, by: Actor) -> None:
        """The running build failed."""
        self._check_running(build)
        self._emit(BiTarget.RebuildFailed, by, build=build, error=error[:2000])

    def _check_running(self, build: int) -> None:
        if self.running != build:
            raise InvalidTransition(f"build {build} of BI target {self.name!r} is not running")
