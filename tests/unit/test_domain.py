"""Domain commands on the in-memory event store: rules, errors, nothing stored on failure."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator

import pytest

from domain.application import Cartolog
from domain.edits import (
    AddLink,
    ChangeDemandParameters,
    CloseLink,
    ModifyLink,
    SetZoneAttributes,
)
from domain.errors import (
    AlreadyExists,
    InvalidCommand,
    InvalidTransition,
    NotFound,
    UnknownTenant,
    VersionConflict,
)
from domain.simulation import COMPLETED, DEAD_LETTERED, QUEUED, RETRYING
from domain.values import Actor, Link, Network, Node, Zone
from tests.unit.fakes import InMemoryBlobStore

ME = Actor("user-1", "corr-1")


def tiny_network() -> Network:
    nodes = (Node(1, 0.0, 0.0), Node(2, 0.01, 0.0), Node(3, 0.01, 0.01))
    links = (Link("a", 1, 2, 1000.0, 1.0, 1.0), Link("b", 2, 3, 1000.0, 1.0, 1.0),
             Link("c", 1, 3, 500.0, 2.0, 3.0))
    zones = (Zone(1, 1, 100.0, 10.0), Zone(2, 3, 20.0, 80.0))
    return Network(nodes, links, zones)


@pytest.fixture()
def app() -> Iterator[Cartolog]:
    application = Cartolog({"PERSISTENCE_MODULE": "eventsourcing.popo"},
                           blobs=InMemoryBlobStore())
    application.register_tenant("acme", ME)
    application.register_tenant("rival", ME)
    yield application
    application.close()


def stored_count(app: Cartolog) -> int:
    return len(app.recorder.select_notifications(start=None, limit=100_000))


def scenario(app: Cartolog) -> uuid.UUID:
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    return app.create_scenario("acme", dataset, "base", ME)


def test_every_event_carries_tenant_actor_and_correlation(app: Cartolog) -> None:
    scenario_id = scenario(app)
    app.edit_scenario("acme", scenario_id, 1, [CloseLink("a")], ME)
    events = list(app.events.get(scenario_id))
    assert [type(e).__name__ for e in events] == ["Created", "LinkClosed"]
    assert all((e.tenant_id, e.actor, e.correlation_id) == ("acme", "user-1", "corr-1")
               for e in events)


def test_edits_change_state_and_the_old_version_stays_readable(app: Cartolog) -> None:
    scenario_id = scenario(app)
    version = app.edit_scenario("acme", scenario_id, 1, [
        CloseLink("a"), SetZoneAttributes(1, population=250.0),
        ModifyLink("b", capacity=2000.0), AddLink(Link("d", 3, 2, 900.0, 1.0, 1.0)),
        ChangeDemandParameters(beta=0.2, deterrence="power"),
    ], ME)
    now = app.get_scenario("acme", scenario_id)
    then = app.get_scenario("acme", scenario_id, version=1)
    assert version == 6 and now.version == 6
    assert now.closed_links == ["a"] and then.closed_links == []
    assert now.zone_attributes == {"1": {"population": 250.0}}
    assert now.link_changes == {"b": {"capacity": 2000.0}}
    assert set(now.added_links) == {"d"}
    assert now.demand == {"trip_rate": 1.0, "deterrence": "power", "beta": 0.2}


@pytest.mark.parametrize(("edit", "reason"), [
    (CloseLink("nope"), "unknown or closed link 'nope'"),
    (SetZoneAttributes(1, population=-5.0), "population must be a finite, non-negative"),
    (SetZoneAttributes(99, jobs=1.0), "unknown zone 99"),
    (ModifyLink("a", capacity=0.0), "capacity must be a finite, positive number"),
    (ModifyLink("a", free_flow_time=math.nan), "free_flow_time must be a finite"),
    (AddLink(Link("e", 1, 42, 100.0, 1.0, 1.0)), "unknown node 42"),
    (AddLink(Link("a", 1, 2, 100.0, 1.0, 1.0)), "link 'a' already exists"),
    (ChangeDemandParameters(deterrence="magic"), "deterrence must be one of"),
])
def test_bad_edits_raise_and_store_nothing(app: Cartolog, edit: object, reason: str) -> None:
    scenario_id = scenario(app)
    before = stored_count(app)
    with pytest.raises(InvalidCommand) as raised:
        app.edit_scenario("acme", scenario_id, 1, [SetZoneAttributes(2, jobs=5.0), edit], ME)  # type: ignore[list-item]
    assert any(reason in problem for problem in raised.value.problems), raised.value.problems
    assert raised.value.problems[0].startswith("edit 1:")
    assert stored_count(app) == before
    assert app.get_scenario("acme", scenario_id).version == 1


def test_closing_a_link_twice_in_one_list_is_rejected(app: Cartolog) -> None:
    scenario_id = scenario(app)
    with pytest.raises(InvalidCommand):
        app.edit_scenario("acme", scenario_id, 1, [CloseLink("a"), CloseLink("a")], ME)


def test_another_tenant_sees_not_found_and_stores_nothing(app: Cartolog) -> None:
    scenario_id = scenario(app)
    before = stored_count(app)
    with pytest.raises(NotFound) as raised:
        app.edit_scenario("rival", scenario_id, 1, [CloseLink("a")], ME)
    assert "acme" not in str(raised.value)
    with pytest.raises(NotFound):
        app.get_scenario("rival", scenario_id)
    assert stored_count(app) == before


def test_unknown_tenant_is_refused(app: Cartolog) -> None:
    with pytest.raises(UnknownTenant):
        app.import_dataset("ghost", "tiny", tiny_network(), ME)


def test_tenant_name_is_registered_once(app: Cartolog) -> None:
    with pytest.raises(AlreadyExists):
        app.register_tenant("acme", ME)
    with pytest.raises(InvalidCommand):
        app.register_tenant("Not A Label", ME)
    assert [t.tenant_id for t in app.list_tenants()] == ["acme", "rival"]


def test_a_stale_version_is_a_conflict(app: Cartolog) -> None:
    scenario_id = scenario(app)
    app.edit_scenario("acme", scenario_id, 1, [CloseLink("a")], ME)
    with pytest.raises(VersionConflict) as raised:
        app.edit_scenario("acme", scenario_id, 1, [CloseLink("b")], ME)
    assert raised.value.actual == 2


def test_invalid_network_lists_every_problem(app: Cartolog) -> None:
    network = Network(
        nodes=(Node(1), Node(2)),
        links=(Link("x", 1, 3, -1.0, 1.0, 1.0), Link("y", 1, 2, 10.0, math.inf, 1.0)),
        zones=(Zone(1, 9, -1.0, 0.0),),
    )
    with pytest.raises(InvalidCommand) as raised:
        app.import_dataset("acme", "broken", network, ME)
    assert raised.value.problems == [
        "link 'x': unknown node 3",
        "link 'x': capacity must be a finite, positive number (not NaN or Infinity)",
        "link 'y': length must be a finite, non-negative number (not NaN or Infinity)",
        "zone 1: unknown centroid node 9",
        "zone 1: population must be a finite, non-negative number (not NaN or Infinity)",
    ]


def test_fork_starts_from_the_source_state_at_a_version(app: Cartolog) -> None:
    scenario_id = scenario(app)
    app.edit_scenario("acme", scenario_id, 1, [CloseLink("a")], ME)
    app.edit_scenario("acme", scenario_id, 2, [CloseLink("b")], ME)
    fork_id = app.fork_scenario("acme", scenario_id, "fork", ME, at_version=2)
    fork = app.get_scenario("acme", fork_id)
    assert fork.closed_links == ["a"] and fork.fork_of == scenario_id and fork.fork_version == 2


def test_simulation_run_lifecycle_and_dead_letter(app: Cartolog) -> None:
    scenario_id = scenario(app)
    run_id = app.request_simulation("acme", scenario_id, "builtin", {"gap": 1e-4}, ME,
                                    max_attempts=2)
    assert app.get_run("acme", run_id).status == QUEUED
    app.start_attempt("acme", run_id, 1, "w1", ME)
    app.fail_attempt("acme", run_id, 1, "boom", "Traceback...", ME)
    assert app.get_run("acme", run_id).status == RETRYING
    app.start_attempt("acme", run_id, 2, "w1", ME)
    app.fail_attempt("acme", run_id, 2, "boom again", "Traceback...", ME)
    assert app.get_run("acme", run_id).status == DEAD_LETTERED
    app.redrive_run("acme", run_id, ME)
    app.start_attempt("acme", run_id, 3, "w2", ME)
    app.complete_run("acme", run_id, 3, "ab" * 32, {"vht": 1.0}, 2.5, ME)
    assert app.get_run("acme", run_id).status == COMPLETED
    with pytest.raises(InvalidTransition):
        app.cancel_run("acme", run_id, "too late", ME)


@pytest.mark.parametrize(("indicators", "detail"), [
    ({"converged": 1.0, "relative_gap": 8e-7, "iterations": 9.0},
     "converged at gap 8.00e-07 after 9 iterations"),
    ({"converged": 0.0, "stalled": 1.0, "relative_gap": 4.2e-3, "iterations": 45.0},
     "stalled at gap 4.20e-03 after 45 iterations"),
    ({"converged": 0.0, "stalled": 1.0, "fallback_bfw": 1.0, "relative_gap": 2e-5,
      "iterations": 230.0},
     "stalled at gap 2.00e-05 after 230 iterations "
     "(Algorithm B stalled; continued with bfw from its flows)"),
    ({"converged": 0.0, "stalled": 0.0, "relative_gap": 0.1, "iterations": 5.0},
     "iteration limit reached at gap 1.00e-01 after 5 iterations"),
    ({"vht": 1.0}, None),
])
def test_status_detail_tells_how_the_assignment_ended(app: Cartolog, indicators: dict[str, float],
                                                      detail: str | None) -> None:
    run_id = app.request_simulation("acme", scenario(app), "builtin", {}, ME)
    app.start_attempt("acme", run_id, 1, "w1", ME)
    assert app.get_run("acme", run_id).status_detail is None
    app.complete_run("acme", run_id, 1, "ab" * 32, indicators, 1.0, ME)
    assert app.get_run("acme", run_id).status_detail == detail


def test_a_stale_attempt_result_is_refused(app: Cartolog) -> None:
    scenario_id = scenario(app)
    run_id = app.request_simulation("acme", scenario_id, "builtin", {}, ME)
    app.start_attempt("acme", run_id, 1, "w1", ME)
    with pytest.raises(InvalidTransition):
        app.complete_run("acme", run_id, 2, "ab" * 32, {}, 1.0, ME)


def test_idempotency_key_returns_the_same_run_or_refuses_a_different_body(app: Cartolog) -> None:
    scenario_id = scenario(app)
    first = app.request_simulation("acme", scenario_id, "builtin", {"gap": 1e-4}, ME,
                                   idempotency_key="k1")
    again = app.request_simulation("acme", scenario_id, "builtin", {"gap": 1e-4}, ME,
                                   idempotency_key="k1")
    assert first == again
    with pytest.raises(InvalidCommand):
        app.request_simulation("acme", scenario_id, "builtin", {"gap": 1e-5}, ME,
                               idempotency_key="k1")


def test_request_refuses_unknown_model_and_future_version(app: Cartolog) -> None:
    scenario_id = scenario(app)
    with pytest.raises(InvalidCommand):
        app.request_simulation("acme", scenario_id, "sorcery", {}, ME)
    with pytest.raises(InvalidCommand):
        app.request_simulation("acme", scenario_id, "builtin", {}, ME, scenario_version=7)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "bad\x00name", "tab\there"])
def test_names_must_be_printable_and_bounded(app: Cartolog, name: str) -> None:
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    before = stored_count(app)
    with pytest.raises(InvalidCommand):
        app.create_scenario("acme", dataset, name, ME)
    with pytest.raises(InvalidCommand):
        app.import_dataset("acme", name, tiny_network(), ME)
    assert stored_count(app) == before


def test_canonical_json_is_byte_for_byte_the_asdict_form_content_hashes_were_made_with() -> None:
    """Datasets are stored under the hash of these bytes: a faster encoding must not change
    one of them (0710 dropped asdict's deep copy from the import path)."""
    import json
    from dataclasses import asdict

    network = Network(
        (Node(1, 13.4, 52.5), Node(2, 13.41, 52.51), Node(3, -0.0, 1e-9)),
        (Link("é-1", 1, 2, 1000.5, 1.25, 0.75, geometry=((13.4, 52.5), (13.405, 52.505),
                                                         (13.41, 52.51))),
         Link("b", 2, 3, 1e12, 3.0, 2.0, b=0.0, power=1.5, toll=2.5, link_type=7, lanes=2.0)),
        (Zone(1, 1, 100.0, 10.0, ((((13.39, 52.49), (13.42, 52.49), (13.42, 52.52),
                                    (13.39, 52.49)),))),
         Zone(2, 3, 0.1, 1e-300)),
        first_thru_node=2, od_matrix=((1, 2, 5.5), (2, 1, 1e-7)))
    assert network.canonical_json() == json.dumps(asdict(network), sort_keys=True,
                                                  separators=(",", ":")).encode()
    assert Network.from_json(network.canonical_json()) == network
