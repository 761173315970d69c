"""Scenario: a tenant's editable version of a dataset's network."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from domain import rules
from domain.base import TenantAggregate
from domain.demand import DemandMatrixUpload, VehicleClassSpec, class_problems
from domain.edits import (
    DETERRENCE_FUNCTIONS,
    AddLink,
    ChangeDemandParameters,
    CloseLink,
    Edit,
    ModifyLink,
    NetworkIndex,
    SetZoneAttributes,
)
from domain.errors import InvalidCommand, InvalidTransition
from domain.values import MAX_SHOWN, Actor, DemandParameters, link_problems, oriented

MAX_EDITS = 1000


class Scenario(TenantAggregate):
    """The effective network is the dataset's plus this scenario's edits."""

    class Created(TenantAggregate.Created):
        name: str
        dataset_id: UUID
        network_sha256: str

    class Forked(TenantAggregate.Created):
        name: str
        dataset_id: UUID
        network_sha256: str
        fork_of: UUID
        fork_version: int
        inherited: dict[str, Any]

    def __init__(
        self, tenant_id: str, name: str, dataset_id: UUID, network_sha256: str,
        fork_of: UUID | None = None, fork_version: int | None = None,
        inherited: dict[str, Any] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.dataset_id = dataset_id
        self.network_sha256 = network_sha256
        self.fork_of = fork_of
        self.fork_version = fork_version
        self.archived = False
        state = inherited or {}
        self.zone_attributes: dict[str, dict[str, float]] = dict(state.get("zone_attributes", {}))
        self.link_changes: dict[str, dict[str, float]] = dict(state.get("link_changes", {}))
        self.added_links: dict[str, dict[str, Any]] = dict(state.get("added_links", {}))
        self.closed_links: list[str] = list(state.get("closed_links", []))
        self.demand: dict[str, Any] = dict(state.get("demand", asdict(DemandParameters())))
        self.demand_matrix: dict[str, Any] | None = state.get("demand_matrix")
        self.vehicle_classes: list[dict[str, Any]] = list(state.get("vehicle_classes", []))

    @classmethod
    def create(
        cls, scenario_id: UUID, tenant_id: str, name: str, dataset_id: UUID,
        network_sha256: str, by: Actor,
    ) -> Scenario:
        """A new scenario on a dataset, with no edits."""
        _check_name(name)
        return cls._start(cls.Created, scenario_id, tenant_id, by, name=name,
                          dataset_id=dataset_id, network_sha256=network_sha256)

    def fork(self, scenario_id: UUID, name: str, by: Actor) -> Scenario:
        """A new scenario starting from this one's state at its current version."""
        _check_name(name)
        return Scenario._start(
            Scenario.Forked, scenario_id, self.tenant_id, by, name=name,
            dataset_id=self.dataset_id, network_sha256=self.network_sha256,
            fork_of=self.id, fork_version=self.version, inherited=self.edited_state(),
        )

    def edited_state(self) -> dict[str, Any]:
        """The scenario's edits relative to its dataset, as plain values."""
        return {
            "zone_attributes": self.zone_attributes, "link_changes": self.link_changes,
            "added_links": self.added_links, "closed_links": self.closed_links,
            "demand": self.demand, "demand_matrix": self.demand_matrix,
            "vehicle_classes": self.vehicle_classes,
        }

    # -- edits ------------------------------------------------------------------------------

    class ZoneAttributesSet(TenantAggregate.Event):
        zone_id: int
        population: float | None
        jobs: float | None

        def apply(self, scenario: Scenario) -> None:
            current = dict(scenario.zone_attributes.get(str(self.zone_id), {}))
            if self.population is not None:
                current["population"] = self.population
            if self.jobs is not None:
                current["jobs"] = self.jobs
            scenario.zone_attributes[str(self.zone_id)] = current

    class LinkAdded(TenantAggregate.Event):
        link: dict[str, Any]

        def apply(self, scenario: Scenario) -> None:
            scenario.added_links[self.link["id"]] = self.link

    class LinkModified(TenantAggregate.Event):
        link_id: str
        changes: dict[str, float]

        def apply(self, scenario: Scenario) -> None:
            merged = {**scenario.link_changes.get(self.link_id, {}), **self.changes}
            scenario.link_changes[self.link_id] = merged

    class LinkClosed(TenantAggregate.Event):
        link_id: str

        def apply(self, scenario: Scenario) -> None:
            scenario.closed_links.append(self.link_id)

    class DemandParametersChanged(TenantAggregate.Event):
        """v2 added `deterrence`; v1 events were always exponential."""

        class_version = 2
        trip_rate: float
        deterrence: str
        beta: float

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["deterrence"] = "exponential"

        def apply(self, scenario: Scenario) -> None:
            scenario.demand = {"trip_rate": self.trip_rate, "deterrence": self.deterrence,
                               "beta": self.beta}

    class DemandMatrixSet(TenantAggregate.Event):
        """The scenario's demand is this matrix (a claim-check blob), not the gravity model."""

        sha256: str
        zone_count: int
        classes: dict[str, float]
        source_format: str

        def apply(self, scenario: Scenario) -> None:
            scenario.demand_matrix = {"sha256": self.sha256, "zone_count": self.zone_count,
                                      "classes": dict(self.classes),
                                      "source_format": self.source_format}

    class VehicleClassesDeclared(TenantAggregate.Event):
        """The classes the scenario's demand is split into (replacing any declared before)."""

        classes: list[dict[str, Any]]

        def apply(self, scenario: Scenario) -> None:
            scenario.vehicle_classes = [dict(c) for c in self.classes]

    class DemandMatrixRemoved(TenantAggregate.Event):
        """The scenario's demand is the gravity model again."""

        def apply(self, scenario: Scenario) -> None:
            scenario.demand_matrix = None

    class Archived(TenantAggregate.Event):
        reason: str

        def apply(self, scenario: Scenario) -> None:
            scenario.archived = True

    class Restored(TenantAggregate.Event):
        reason: str

        def apply(self, scenario: Scenario) -> None:
            scenario.archived = False

    class MergeApplied(TenantAggregate.Event):
        """The events before this one, back to the merge's first, came from a merge request."""

        merge_request_id: UUID
        fork_id: UUID
        applied: int

        def apply(self, scenario: Scenario) -> None:
            pass

    def apply_edits(self, edits: list[Edit], network: NetworkIndex, by: Actor) -> None:
        """Validate every edit against the network and the edits before it, then record them.

        Raises InvalidCommand listing every problem; then nothing is recorded.
        """
        if self.archived:
            raise InvalidTransition(f"scenario {self.id} is archived")
        if not 1 <= len(edits) <= MAX_EDITS:
            raise InvalidCommand(f"an edit list must hold 1 to {MAX_EDITS} edits")
        problems: list[str] = []
        for index, given in enumerate(edits):
            found = self._problems(given, network)
            edit, found = (given, found) if found else _oriented(given, network)
            problems.extend(f"edit {index}: {p}" for p in found)
            if not found:
                self._record(edit, by)
        if problems:
            raise InvalidCommand("the edits were rejected", problems)

    def archive(self, reason: str, by: Actor) -> None:
        """Archive: no more edits or simulations."""
        if self.archived:
            raise InvalidTransition(f"scenario {self.id} is already archived")
        problem = rules.text_problem("an archive reason", reason, allow_empty=True,
                                     multiline=True)
        if problem:
            raise InvalidCommand(problem)
        self._emit(Scenario.Archived, by, reason=reason)

    def restore(self, reason: str, by: Actor) -> None:
        """Bring an archived scenario back: edits and simulations are allowed again."""
        if not self.archived:
            raise InvalidTransition(f"scenario {self.id} is not archived")
        problem = rules.text_problem("a restore reason", reason, allow_empty=True,
                                     multiline=True)
        if problem:
            raise InvalidCommand(problem)
        self._emit(Scenario.Restored, by, reason=reason)

    def repeat_setting(self, kind: str, payload: dict[str, Any], by: Actor) -> bool:
        """Record a demand setting that another scenario of this network recorded (a merge
        request's): a matrix set (its blob is the tenant's already) or removed, or vehicle
        classes declared. False when it changes nothing: removing a matrix there is none of."""
        self._check_open()
        if kind == "DemandMatrixSet":
            self._emit(Scenario.DemandMatrixSet, by, sha256=str(payload["sha256"]),
                       zone_count=int(payload["zone_count"]), classes=dict(payload["classes"]),
                       source_format=str(payload["source_format"]))
        elif kind == "DemandMatrixRemoved":
            if self.demand_matrix is None:
                return False
            self._emit(Scenario.DemandMatrixRemoved, by)
        elif kind == "VehicleClassesDeclared":
            self.declare_vehicle_classes([VehicleClassSpec(**{
                **spec, "allowed_link_types": None if spec.get("allowed_link_types") is None
                else tuple(spec["allowed_link_types"])}) for spec in payload["classes"]], by)
        else:
            raise InvalidCommand(f"{kind} is not a demand setting")
        return True

    def record_merge(self, merge_request_id: UUID, fork_id: UUID, applied: int,
                     by: Actor) -> None:
        """Mark the end of the edits a merge request applied to this scenario."""
        if self.archived:
            raise InvalidTransition(f"scenario {self.id} is archived")
        self._emit(Scenario.MergeApplied, by, merge_request_id=merge_request_id,
                   fork_id=fork_id, applied=applied)

    def set_demand_matrix(self, upload: DemandMatrixUpload, sha256: str, by: Actor) -> None:
        """Record the matrix stored under `sha256` as this scenario's demand."""
        self._check_open()
        self._emit(Scenario.DemandMatrixSet, by, sha256=sha256,
                   zone_count=len(upload.zone_ids), classes=dict(upload.class_totals),
                   source_format=upload.source_format)

    def declare_vehicle_classes(self, classes: list[VehicleClassSpec], by: Actor) -> None:
        """Declare the scenario's vehicle classes; InvalidCommand lists every problem."""
        self._check_open()
        problems = class_problems(classes)
        if problems:
            raise InvalidCommand("the vehicle classes were rejected", problems)
        declared = [{**asdict(c), "allowed_link_types": None if c.allowed_link_types is None
                     else sorted(set(c.allowed_link_types))} for c in classes]
        self._emit(Scenario.VehicleClassesDeclared, by, classes=declared)

    def remove_demand_matrix(self, by: Actor) -> None:
        """Go back to the gravity model."""
        self._check_open()
        if self.demand_matrix is None:
            raise InvalidTransition(f"scenario {self.id} has no demand matrix")
        self._emit(Scenario.DemandMatrixRemoved, by)

    def _check_open(self) -> None:
        if self.archived:
            raise InvalidTransition(f"scenario {self.id} is archived")

    def link_exists(self, link_id: str, network: NetworkIndex) -> bool:
        """A link of the base network or one added by an edit, and not closed."""
        known = link_id in network.link_ids or link_id in self.added_links
        return known and link_id not in self.closed_links

    def _record(self, edit: Edit, by: Actor) -> None:
        if isinstance(edit, SetZoneAttributes):
            self._emit(Scenario.ZoneAttributesSet, by, zone_id=edit.zone_id,
                       population=edit.population, jobs=edit.jobs)
        elif isinstance(edit, AddLink):
            self._emit(Scenario.LinkAdded, by, link=_link_dict(edit))
        elif isinstance(edit, ModifyLink):
            changes = {k: v for k, v in asdict(edit).items() if k != "link_id" and v is not None}
            self._emit(Scenario.LinkModified, by, link_id=edit.link_id, changes=changes)
        elif isinstance(edit, CloseLink):
            self._emit(Scenario.LinkClosed, by, link_id=edit.link_id)
        else:
            merged = {**self.demand, **{k: v for k, v in asdict(edit).items() if v is not None}}
            self._emit(Scenario.DemandParametersChanged, by, **merged)

    def _problems(self, edit: Edit, network: NetworkIndex) -> list[str]:
        if isinstance(edit, SetZoneAttributes):
            return _zone_edit_problems(edit, network)
        if isinstance(edit, AddLink):
            return self._add_link_problems(edit, network)
        if isinstance(edit, ModifyLink | CloseLink):
            if not self.link_exists(edit.link_id, network):
                return [f"unknown or closed link {edit.link_id[:MAX_SHOWN]!r}"]
            return _modify_problems(edit) if isinstance(edit, ModifyLink) else []
        return _demand_problems(edit)

    def _add_link_problems(self, edit: AddLink, network: NetworkIndex) -> list[str]:
        link_id = edit.link.id
        if link_id in network.link_ids or link_id in self.added_links:
            return [f"link {link_id[:MAX_SHOWN]!r} already exists"]
        return link_problems(edit.link, set(network.node_ids))


def _oriented(edit: Edit, network: NetworkIndex) -> tuple[Edit, list[str]]:
    """An added link's line as an import reads it (domain.values.oriented): turned round when
    drawn from its to_node, refused when an end is more than 1 m from its node."""
    where = network.node_positions
    if not isinstance(edit, AddLink) or not {edit.link.from_node, edit.link.to_node} <= \
            where.keys():
        return edit, []  # no link, or an unknown node: link_problems names it
    drawn, problem = oriented(edit.link, where[edit.link.from_node], where[edit.link.to_node],
                              "the network places its nodes")
    return (edit, [str(problem)]) if drawn is None else (AddLink(drawn), [])


def _check_name(name: str) -> None:
    problem = rules.label_problem("scenario", name)
    if problem:
        raise InvalidCommand(problem)


def _link_dict(edit: AddLink) -> dict[str, Any]:
    link = asdict(edit.link)
    link["geometry"] = [list(c) for c in edit.link.geometry]
    return link


def _zone_edit_problems(edit: SetZoneAttributes, network: NetworkIndex) -> list[str]:
    if edit.zone_id not in network.zone_ids:
        return [f"unknown zone {str(edit.zone_id)[:40]}"]
    if edit.population is None and edit.jobs is None:
        return ["set population, jobs or both"]
    return rules.collect(*(rules.number_problem(name, value)
                           for name, value in (("population", edit.population),
                                               ("jobs", edit.jobs)) if value is not None))


def _modify_problems(edit: ModifyLink) -> list[str]:
    values = {k: v for k, v in asdict(edit).items() if k != "link_id"}
    if all(v is None for v in values.values()):
        return ["name at least one attribute to change"]
    positive = {"capacity", "speed", "lanes"}
    return rules.collect(*(rules.number_problem(name, value, positive=name in positive)
                           for name, value in values.items() if value is not None))


def _demand_problems(edit: ChangeDemandParameters) -> list[str]:
    if edit.trip_rate is None and edit.deterrence is None and edit.beta is None:
        return ["name at least one parameter to change: trip_rate, deterrence or beta"]
    found = rules.collect(*(rules.number_problem(name, value)
                            for name, value in (("trip_rate", edit.trip_rate),
                                                ("beta", edit.beta)) if value is not None))
    if edit.deterrence is not None and edit.deterrence not in DETERRENCE_FUNCTIONS:
        found.append(f"deterrence must be one of {', '.join(DETERRENCE_FUNCTIONS)}")
    return found
