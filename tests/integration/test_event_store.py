"""The event store on real PostgreSQL: concurrency, atomicity, group commit, upcasting."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from adapters.envelope import envelope
from domain.edits import CloseLink, ModifyLink, SetZoneAttributes
from domain.errors import InvalidCommand, NotFound, UnknownTenant, VersionConflict
from infra.settings import Settings
from infra.wiring import Container, build
from tests.integration.conftest import OPERATOR, stored_events
from tests.unit.test_domain import tiny_network
from tests.unit.test_upcasting import v1_demand_event


def new_scenario(container: Container) -> uuid.UUID:
    dataset = container.app.import_dataset("acme", "tiny", tiny_network(), OPERATOR)
    return container.app.create_scenario("acme", dataset, "base", OPERATOR)


def test_two_writers_at_the_same_version_one_wins(settings: Settings) -> None:
    # Two processes' worth of state: two applications, each with its own cache and pool.
    first, second = build(settings), build(settings)
    try:
        first.app.register_tenant("duel", OPERATOR)
        dataset = first.app.import_dataset("duel", "tiny", tiny_network(), OPERATOR)
        scenario_id = first.app.create_scenario("duel", dataset, "base", OPERATOR)
        second.app.get_scenario("duel", scenario_id)  # both have read version 1
        barrier = threading.Barrier(2)

        def edit(app_container: Container, edit: object) -> str:
            barrier.wait()
            try:
                app_container.app.edit_scenario("duel", scenario_id, 1, [edit], OPERATOR)  # type: ignore[list-item]
            except VersionConflict as conflict:
                return f"conflict: {conflict}"
            return "won"

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(edit, (first, second),
                                    (CloseLink("a"), ModifyLink("b", capacity=5.0))))
        assert sorted(r.split(":")[0] for r in results) == ["conflict", "won"]
        conflict = next(r for r in results if r.startswith("conflict"))
        assert "expected version 1" in conflict
        final = first.app.get_scenario("duel", scenario_id)
        assert final.version == 2
        winner = "a" in final.closed_links or "b" in final.link_changes
        assert winner and not ("a" in final.closed_links and "b" in final.link_changes)
        # The loser retries on the new version and nothing is lost.
        loser_edit = ModifyLink("b", capacity=5.0) if final.closed_links else CloseLink("a")
        second.app.edit_scenario("duel", scenario_id, 2, [loser_edit], OPERATOR)
        final = first.app.get_scenario("duel", scenario_id)
        assert final.closed_links == ["a"] and final.link_changes == {"b": {"capacity": 5.0}}
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("bad", [
    lambda c, s: c.app.edit_scenario("acme", s, 1, [CloseLink("no-such-link")], OPERATOR),
    lambda c, s: c.app.edit_scenario("acme", s, 1, [SetZoneAttributes(1, population=-1.0)],
                                     OPERATOR),
    lambda c, s: c.app.edit_scenario("rival", s, 1, [CloseLink("a")], OPERATOR),
    lambda c, s: c.app.edit_scenario("nobody", s, 1, [CloseLink("a")], OPERATOR),
], ids=["unknown link", "negative population", "wrong tenant", "unknown tenant"])
def test_bad_input_raises_a_domain_error_and_stores_nothing(container: Container, bad) -> None:  # type: ignore[no-untyped-def]
    scenario_id = new_scenario(container)
    before = stored_events(container)
    with pytest.raises((InvalidCommand, NotFound, UnknownTenant)):
        bad(container, scenario_id)
    assert stored_events(container) == before


def test_concurrent_saves_are_grouped_and_every_one_is_stored(container: Container) -> None:
    scenario_ids = [new_scenario(container) for _ in range(16)]
    before = stored_events(container)

    def write(scenario_id: uuid.UUID) -> list[int]:
        versions = []
        for i in range(20):
            versions.append(container.app.edit_scenario(
                "acme", scenario_id, i + 1, [SetZoneAttributes(1, population=float(i))],
                OPERATOR))
        return versions

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(write, scenario_ids))
    assert all(r == list(range(2, 22)) for r in results)
    assert stored_events(container) == before + 16 * 20
    with container.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT originator_id, originator_version FROM cartolog_events "
            "WHERE originator_id = ANY(:ids) ORDER BY id"), {"ids": scenario_ids}).all()
    last: dict[uuid.UUID, int] = {}
    for aggregate_id, version in rows:  # notification order respects each aggregate's order
        assert version > last.get(aggregate_id, 0)
        last[aggregate_id] = version


def test_a_conflict_inside_a_group_fails_only_that_save(container: Container) -> None:
    scenario_ids = [new_scenario(container) for _ in range(8)]
    barrier = threading.Barrier(9)

    def edit(scenario_id: uuid.UUID) -> str:
        barrier.wait()
        try:
            container.app.edit_scenario("acme", scenario_id, 1, [CloseLink("a")], OPERATOR)
        except VersionConflict:
            return "conflict"
        return "ok"

    with ThreadPoolExecutor(9) as pool:  # the first scenario gets two writers
        results = list(pool.map(edit, [scenario_ids[0], *scenario_ids]))
    assert sorted(results).count("conflict") == 1 and results.count("ok") == 8


def test_v1_event_in_postgres_is_upcast_in_the_envelope(container: Container) -> None:
    scenario_id = new_scenario(container)
    container.app.recorder.insert_events([v1_demand_event(container.app, scenario_id)])
    position = container.reader().head()
    (notification,) = container.reader().after(position - 1, 1)
    document = envelope(notification, container.app.mapper)
    assert document["type"] == "Scenario.DemandParametersChanged"
    assert document["schema_version"] == 2
    assert document["payload"] == {"trip_rate": 2.0, "deterrence": "exponential", "beta": 0.05}


def test_blob_claim_check_keeps_events_small(container: Container) -> None:
    network = tiny_network()
    dataset_id = container.app.import_dataset("acme", "tiny", network, OPERATOR)
    dataset = container.app.get_dataset("acme", dataset_id)
    assert container.blobs.get("acme", dataset.network_sha256) == network.canonical_json()
    with pytest.raises(KeyError):
        container.blobs.get("rival", dataset.network_sha256)
    with container.engine.connect() as connection:
        biggest = connection.execute(text(
            "SELECT max(octet_length(state)) FROM cartolog_events")).scalar_one()
    assert biggest < 4096
