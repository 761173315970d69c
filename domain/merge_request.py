"""MergeRequest: a proposal to merge a fork's edits since its fork point into its parent.

An edit is kept as a plain record of the scenario event that made it (`version`, `type`,
`subject`, `actor`, `payload`), so the request shows exactly what the fork's log holds.
Its `subject` is what it changes: `link:ID`, `zone:ID`, `demand` (the gravity model's
parameters), `demand_matrix` (a matrix set or removed) or `vehicle_classes`. A conflict is a
subject that both the fork and the parent changed since the fork point (or since the parent
last took this fork's edits: decision 0711).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from domain.base import TenantAggregate
from domain.edits import (
    AddLink,
    ChangeDemandParameters,
    CloseLink,
    Edit,
    ModifyLink,
    SetZoneAttributes,
)
from domain.errors import InvalidCommand, InvalidTransition, NotAllowed
from domain.rules import MAX_COMMENT, label_problem, text_problem
from domain.values import Actor, Link

EditRecord = dict[str, Any]
# Edits repeated on another scenario through `as_edit` and `Scenario.apply_edits`...
NETWORK_EDIT_TYPES = ("ZoneAttributesSet", "LinkAdded", "LinkModified", "LinkClosed",
                      "DemandParametersChanged")
# ...and the demand settings a scenario records directly (`Scenario.repeat_setting`).
SETTING_TYPES = ("DemandMatrixSet", "DemandMatrixRemoved", "VehicleClassesDeclared")
EDIT_TYPES = NETWORK_EDIT_TYPES + SETTING_TYPES
ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "tenant_id", "actor",
                      "correlation_id"})
OPEN, MERGED, CLOSED = "open", "merged", "closed"
APPROVED, CHANGES_REQUESTED = "approved", "changes_requested"
VERDICTS = (APPROVED, CHANGES_REQUESTED)
SIDES = ("fork", "parent")


def edit_record(event: Any) -> EditRecord | None:
    """The record of a stored scenario event, or None when it is not an edit."""
    kind = type(event).__name__
    if kind not in EDIT_TYPES:
        return None
    payload = {k: v for k, v in vars(event).items() if k not in ENVELOPE}
    return {"version": event.originator_version, "type": kind, "actor": event.actor,
            "occurred_at": event.timestamp.isoformat(), "correlation_id": event.correlation_id,
            "subject": subject_of(kind, payload), "payload": payload}


def edit_records(events: Iterable[Any]) -> list[EditRecord]:
    """The edit records among stored scenario events, oldest first."""
    return [record for record in map(edit_record, events) if record is not None]


def subject_of(kind: str, payload: Mapping[str, Any]) -> str:
    """What an edit changes: `link:ID`, `zone:ID`, `demand`, `demand_matrix` or
    `vehicle_classes`."""
    if kind in ("DemandMatrixSet", "DemandMatrixRemoved"):
        return "demand_matrix"
    if kind == "VehicleClassesDeclared":
        return "vehicle_classes"
    if kind == "ZoneAttributesSet":
        return f"zone:{payload['zone_id']}"
    if kind == "LinkAdded":
        return f"link:{payload['link']['id']}"
    if kind in ("LinkModified", "LinkClosed"):
        return f"link:{payload['link_id']}"
    return "demand"


def as_edit(record: Mapping[str, Any]) -> Edit:
    """The edit command that repeats a recorded network edit (not a setting) on another
    scenario."""
    kind, p = record["type"], record["payload"]
    if kind == "ZoneAttributesSet":
        return SetZoneAttributes(int(p["zone_id"]), p["population"], p["jobs"])
    if kind == "LinkAdded":
        shape = tuple((float(x), float(y)) for x, y in p["link"].get("geometry") or ())
        return AddLink(Link(**{**p["link"], "geometry": shape}))
    if kind == "LinkModified":
        return ModifyLink(str(p["link_id"]), **p["changes"])
    if kind == "LinkClosed":
        return CloseLink(str(p["link_id"]))
    return ChangeDemandParameters(p["trip_rate"], p["deterrence"], p["beta"])


def conflicts(fork_edits: list[EditRecord], parent_edits: list[EditRecord]
              ) -> list[dict[str, Any]]:
    """Subjects both sides changed since the fork point, with each side's edits."""
    touched = {e["subject"] for e in fork_edits}
    clashing = sorted({e["subject"] for e in parent_edits} & touched)
    return [{"subject": subject,
             "fork": [e for e in fork_edits if e["subject"] == subject],
             "parent": [e for e in parent_edits if e["subject"] == subject]}
            for subject in clashing]


class UnresolvedConflicts(InvalidTransition):
    """A merge was asked for while the parent and the fork still disagree on subjects."""

    def __init__(self, subjects: list[str]) -> None:
        super().__init__("resolve every conflict first: take the fork's or the parent's edits")
        self.problems = [f"{subject}: unresolved conflict" for subject in subjects]


class MergeRequest(TenantAggregate):
    """Status moves open → merged, or open → closed; reviews and resolutions while open."""

    class Opened(TenantAggregate.Created):
        fork_id: UUID
        parent_id: UUID
        fork_point: int
        fork_version: int
        parent_version: int
        title: str
        edits: list[dict[str, Any]]
        conflicts: list[dict[str, Any]]

    def __init__(self, tenant_id: str, fork_id: UUID, parent_id: UUID, fork_point: int,
                 fork_version: int, parent_version: int, title: str,
                 edits: list[EditRecord], conflicts: list[dict[str, Any]], actor: str) -> None:
        self.tenant_id = tenant_id
        self.author = actor
        self.fork_id, self.parent_id = fork_id, parent_id
        self.fork_point, self.fork_version = fork_point, fork_version
        self.parent_version = parent_version
        self.title = title
        self.edits = edits
        self.conflicts = conflicts
        self.status = OPEN
        self.verdict: str | None = None
        self.reviews: list[dict[str, Any]] = []
        self.resolutions: dict[str, str] = {}
        self.merged_version: int | None = None

    @classmethod
    def open(cls, request_id: UUID, tenant_id: str, fork_id: UUID, parent_id: UUID,
             fork_point: int, fork_version: int, parent_version: int, title: str,
             edits: list[EditRecord], found: list[dict[str, Any]], by: Actor) -> MergeRequest:
        """Propose the fork's edits since `fork_point` for its parent."""
        problem = label_problem("merge request", title)
        if problem:
            raise InvalidCommand(problem)
        if not edits:
            raise InvalidCommand("the fork has no edits since its fork point or since its "
                                 "last merge")
        return cls._start(cls.Opened, request_id, tenant_id, by, fork_id=fork_id,
                          parent_id=parent_id, fork_point=fork_point,
                          fork_version=fork_version, parent_version=parent_version,
                          title=title, edits=edits, conflicts=found)

    class Reviewed(TenantAggregate.Event):
        verdict: str
        comment: str

        def apply(self, request: MergeRequest) -> None:
            request.verdict = self.verdict
            request.reviews.append({"reviewer": self.actor, "verdict": self.verdict,
                                    "comment": self.comment, "at": self.timestamp})

    class ConflictResolved(TenantAggregate.Event):
        subject: str
        take: str

        def apply(self, request: MergeRequest) -> None:
            request.resolutions[self.subject] = self.take

    class Merged(TenantAggregate.Event):
        parent_version: int
        applied: int

        def apply(self, request: MergeRequest) -> None:
            request.status = MERGED
            request.merged_version = self.parent_version

    class Closed(TenantAggregate.Event):
        reason: str

        def apply(self, request: MergeRequest) -> None:
            request.status = CLOSED

    def review(self, verdict: str, comment: str, by: Actor) -> None:
        """Approve or request changes; never by the request's own author."""
        self._check_open()
        if by.sub == self.author:
            raise NotAllowed("the author of a merge request cannot review it")
        if verdict not in VERDICTS:
            raise InvalidCommand(f"verdict must be one of {', '.join(VERDICTS)}")
        if verdict == CHANGES_REQUESTED and not comment.strip():
            raise InvalidCommand("say which changes are needed in the comment")
        problem = text_problem("a comment", comment, MAX_COMMENT, allow_empty=True,
                               multiline=True)
        if problem:
            raise InvalidCommand(problem)
        self._emit(MergeRequest.Reviewed, by, verdict=verdict, comment=comment)

    def resolve(self, subject: str, take: str, current: list[str], by: Actor) -> None:
        """Settle a conflict on `subject` (one of the `current` ones) for one side."""
        self._check_open()
        if take not in SIDES:
            raise InvalidCommand(f"take must be one of {', '.join(SIDES)}")
        if subject not in current:
            raise InvalidCommand(f"{subject!r} is not in conflict")
        self._emit(MergeRequest.ConflictResolved, by, subject=subject, take=take)

    def chosen_edits(self, current: list[str]) -> list[EditRecord]:
        """The fork's edits to apply, once every `current` conflict is resolved and approved."""
        self._check_open()
        if self.verdict != APPROVED:
            raise InvalidTransition("a merge request is merged only once a reviewer approved it")
        unresolved = [s for s in current if s not in self.resolutions]
        if unresolved:
            raise UnresolvedConflicts(unresolved)
        return [e for e in self.edits if self.resolutions.get(e["subject"], "fork") == "fork"]

    def record_merge(self, parent_version: int, applied: int, by: Actor) -> None:
        """Record that the chosen edits became the parent's version `parent_version`."""
        self._check_open()
        self._emit(MergeRequest.Merged, by, parent_version=parent_version, applied=applied)

    def close(self, reason: str, by: Actor) -> None:
        """Withdraw the request."""
        self._check_open()
        problem = text_problem("a reason", reason, allow_empty=True, multiline=True)
        if problem:
            raise InvalidCommand(problem)
        self._emit(MergeRequest.Closed, by, reason=reason)

    def _check_open(self) -> None:
        if self.status != OPEN:
            raise InvalidTransition(f"merge request {self.id} is {self.status}")
