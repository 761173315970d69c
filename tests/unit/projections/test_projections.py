"""Projections are pure: the same events give the same operations, whatever the order."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.bi import BiTarget
from domain.errors import InvalidCommand, InvalidTransition
from domain.values import Actor
from projections import geometry
from projections.base import Context, Event, Patch, ProjectionError, Put, Raise, Row, View
from projections.bi import REQUEST, START, WATCH, BiSync, TargetState, next_steps
from projections.read_model import ReadModel
from projections.results import parse
from tests.unit.fakes import InMemoryBlobStore
from tests.unit.test_domain import tiny_network

ME = Actor("tests")


class NoRows:
    def get(self, table: str, key: Any) -> Row | None:
        return None


def event(type_: str, payload: dict[str, Any], version: int = 1, position: int = 1,
          aggregate: str = "7b0c1c64-1d1b-4c1e-9c1a-000000000001") -> Event:
    return Event(type=type_, tenant_id="acme", aggregate_type=type_.split(".")[0],
                 aggregate_id=aggregate, aggregate_version=version, position=position,
                 occurred_at=datetime(2026, 1, 1, tzinfo=UTC), actor="a", correlation_id="c",
                 event_id=str(uuid.uuid4()), payload=payload)


def test_geometry_is_exact_ewkt() -> None:
    assert geometry.point(0.1, 2) == "SRID=4326;POINT(0.1 2.0)"
    assert geometry.line([(0, 0)]) is None
    assert geometry.multipolygon([[(0, 0), (1, 0), (1, 1)]]) == (
        "SRID=4326;MULTIPOLYGON(((0.0 0.0,1.0 0.0,1.0 1.0,0.0 0.0)))")


def test_a_scenario_gets_its_network_rows_from_the_claim_check() -> None:
    blobs = InMemoryBlobStore()
    network = tiny_network()
    sha = blobs.put("acme", network.canonical_json())
    projection = ReadModel(Context(blobs))
    ops = projection.apply(event("Scenario.Forked", {
        "name": "f", "dataset_id": str(uuid.uuid4()), "network_sha256": sha,
        "fork_of": str(uuid.uuid4()), "fork_version": 3,
        "inherited": {"closed_links": ["a"], "link_changes": {"b": {"capacity": 9.0}},
                      "zone_attributes": {"1": {"jobs": 4.0}}, "added_links": {},
                      "demand": {"trip_rate": 2.0, "deterrence": "power", "beta": 0.3}}}),
        NoRows())
    links = {op.row["link_id"]: op.row for op in ops
             if isinstance(op, Put) and op.table == "scenario_links"}
    assert links["a"]["closed"] and not links["b"]["closed"] and links["b"]["capacity"] == 9.0
    assert links["a"]["geom"] == "SRID=4326;LINESTRING(0.0 0.0,0.01 0.0)"
    zones = [op.row for op in ops if isinstance(op, Put) and op.table == "scenario_zones"]
    assert zones[0]["jobs"] == 4.0 and zones[0]["centroid"] == "SRID=4326;POINT(0.0 0.0)"
    (scenario,) = [op.row for op in ops if isinstance(op, Put) and op.table == "scenarios"]
    assert (scenario["trip_rate"], scenario["deterrence"]) == (2.0, "power")


def test_edits_patch_rows_and_move_the_scenario_version() -> None:
    ops = ReadModel(Context(InMemoryBlobStore())).apply(
        event("Scenario.LinkModified", {"link_id": "a", "changes": {"speed": 50.0}}, 4),
        NoRows())
    assert ops[0] == Patch("scenario_links", ("acme", ops[0].key[1], "a"), {"speed": 50.0})
    assert isinstance(ops[1], Patch) and ops[1].changes["version"] == 4


def test_data_changes_raise_the_tenant_data_position_in_any_order() -> None:
    projection = BiSync(Context(InMemoryBlobStore()))
    ops = [projection.apply(event("Scenario.LinkClosed", {"link_id": "a"}, position=p),
                            NoRows())[0] for p in (5, 9, 7)]
    assert all(isinstance(op, Raise) and op.table == "tenant_data" for op in ops)
    for order in itertools.permutations(ops):
        assert max(op.values["data_position"] for op in order) == 9  # type: ignore[union-attr]


@pytest.mark.parametrize(("state", "steps"), [
    (TargetState(False, None, 0, 0), []),
    (TargetState(False, None, 0, 5), [REQUEST, START]),
    (TargetState(True, None, 0, 5), [START]),
    (TargetState(False, 1, 5, 5), [WATCH]),
    (TargetState(False, 1, 5, 9), [REQUEST, WATCH]),
    (TargetState(True, 1, 5, 50), [WATCH]),
])
def test_manager_rules(state: TargetState, steps: list[str]) -> None:
    assert next_steps(state) == steps


def test_requests_coalesce_to_one_pending_and_builds_run_one_at_a_time() -> None:
    target = BiTarget.register("acme", "bi", "external", ME, "http://t", "http://s")
    assert target.request_rebuild("data", ME) is True
    assert target.request_rebuild("data", ME) is False
    build = target.start_rebuild(10, ME)
    assert target.request_rebuild("more data", ME) is True
    assert target.request_rebuild("more data", ME) is False
    with pytest.raises(InvalidTransition):
        target.start_rebuild(12, ME)
    target.complete_rebuild(build, ME)
    assert target.start_rebuild(12, ME) == 2 and target.started_position == 12
    with pytest.raises(InvalidCommand):
        BiTarget.register("acme", "x", "external", ME)


def test_result_documents_parse_and_unknown_formats_give_nothing() -> None:
    links, zones = parse(json.dumps({"links": [{"link_id": 1, "flow": 2}],
                                     "zones": [{"zone_id": 3, "trips": None}]}).encode())
    assert (links[0].link_id, links[0].flow, zones[0].trips) == ("1", 2.0, None)
    assert parse(b"not json") == ([], [])


class Rows:
    """A View over rows given up front: what the projector reads back from its own tables."""

    def __init__(self, rows: dict[tuple[str, Any], Row]) -> None:
        self.rows = rows

    def get(self, table: str, key: Any) -> Row | None:
        return self.rows.get((table, key))


def test_projections_build_on_the_rows_already_projected() -> None:
    run_id = "7b0c1c64-1d1b-4c1e-9c1a-000000000009"
    view: View = Rows({("simulation_runs", ("acme", run_id)): {
        "attempt": 3, "scenario_id": "s-1", "attempts_allowed": 3}})
    projection = ReadModel(Context(InMemoryBlobStore()))
    redriven = event("SimulationRun.Redriven", {"extra_attempts": 2}, 9, aggregate=run_id)
    (patch,) = projection.apply(redriven, view)
    assert isinstance(patch, Patch) and patch.changes["attempts_allowed"] == 5
    completed = projection.apply(event("SimulationRun.Completed", {
        "result_sha256": "", "duration_s": 1.0, "indicators": {"vkt": 7.0}}, 10,
        aggregate=run_id), view)
    indicators = [op.row for op in completed if isinstance(op, Put) and op.table == "indicators"]
    assert [(r["scenario_id"], r["name"], r["value"]) for r in indicators] == [("s-1", "vkt", 7.0)]
    with pytest.raises(ProjectionError, match="not projected"):
        projection.apply(redriven, NoRows())


def test_the_workers_output_document_is_understood() -> None:
    links, zones = parse(json.dumps({
        "schema": "cartolog.simulation-output/1", "links": [
            {"id": "a", "flow": 4.5, "time": 1.0, "volume_capacity": 0.2,
             "generalized_cost": 1.1}],
        "zones": [{"id": 2, "trips_from": 10.0, "trips_to": 9.0,
                   "jobs_within_threshold": 3.0, "logsum_accessibility": 0.7}]}).encode())
    assert (links[0].link_id, links[0].congested_time, zones[0].zone_id, zones[0].trips) == (
        "a", 1.0, 2, 10.0)
