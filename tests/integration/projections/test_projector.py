"""The projector on the real broker and PostGIS: rows, tracking, de-duplication, errors."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import text

from adapters.projector import statuses, wait_for_version
from domain.edits import CloseLink, SetZoneAttributes
from infra.wiring import Container
from tests.integration.conftest import OPERATOR
from tests.integration.projections.conftest import (
    Workload,
    counts,
    relay_and_projector,
    wait_caught_up,
)
from tests.unit.test_domain import tiny_network


def test_projector_builds_the_read_model(container: Container) -> None:
    workload = Workload(container, ("acme", "rival"))
    with relay_and_projector(container):
        for kind in (0, 1, 2, 3, 4, 5):
            workload.do(kind, 0, 1, 250.0)
        wait_caught_up(container)
    scenario = workload.scenarios["acme"][0]
    with container.engine.connect() as connection:
        row = connection.execute(text(
            "SELECT version, ST_AsText(geom), closed FROM scenario_links JOIN scenarios "
            "USING (tenant_id, scenario_id) WHERE scenario_id = :s AND link_id = 'a'"),
            {"s": scenario}).one()
        assert row[1] == "LINESTRING(0 0,0.01 0)"
        runs = connection.execute(text(
            "SELECT status, attempt FROM simulation_runs WHERE tenant_id = 'acme' "
            "ORDER BY requested_at")).all()
        assert [tuple(r) for r in runs] == [("completed", 1), ("dead_lettered", 1)]
        assert connection.execute(text(
            "SELECT value FROM indicators WHERE name = 'vehicle_km'")).scalar_one() == 500.0
    assert counts(container, "link_results", "zone_results", "notifications") == {
        "link_results": 3, "zone_results": 2, "notifications": 2}


def test_read_your_writes_waits_for_the_version(container: Container) -> None:
    dataset = container.app.import_dataset("acme", "tiny", tiny_network(), OPERATOR)
    scenario = container.app.create_scenario("acme", dataset, "s", OPERATOR)
    with relay_and_projector(container, ["read_model"]):
        version = container.app.edit_scenario("acme", scenario, 1, [CloseLink("a")], OPERATOR)
        assert wait_for_version(container.engine, "read_model", scenario, version, timeout=30)
        with container.engine.connect() as connection:
            closed = connection.execute(text(
                "SELECT closed FROM scenario_links WHERE scenario_id = :s AND link_id = 'a'"),
                {"s": scenario}).scalar_one()
        assert closed is True
    assert not wait_for_version(container.engine, "read_model", scenario, version + 1,
                                timeout=0.2)


def test_a_bad_event_is_recorded_and_the_projection_continues(container: Container) -> None:
    dataset = container.app.import_dataset("acme", "tiny", tiny_network(), OPERATOR)
    scenario = container.app.create_scenario("acme", dataset, "s", OPERATOR)
    network = replace(tiny_network(), first_thru_node=2)
    doomed = container.app.import_dataset("acme", "doomed", network, OPERATOR)
    other = container.app.create_scenario("acme", doomed, "s2", OPERATOR)
    container.app.edit_scenario("acme", scenario, 1, [SetZoneAttributes(1, jobs=5.0)], OPERATOR)
    # The network blob vanished: its dataset and scenario cannot be projected.
    with container.engine.begin() as connection:
        connection.execute(text("DELETE FROM blobs WHERE sha256 = :s"),
                           {"s": network.sha256()})
    with relay_and_projector(container, ["read_model"]):
        wait_caught_up(container, ["read_model"])
    (status,) = statuses(container.engine, ["read_model"], container.settings.events_topic)
    assert status.state == "running" and status.errors >= 1
    assert "network blob" in (status.last_error or "")
    with container.engine.connect() as connection:
        errors = connection.execute(text(
            "SELECT aggregate_id, event_type, topic, partition FROM projection_errors "
            "WHERE projection = 'read_model'")).all()
        assert any(str(e[0]) == str(other) and e[1] == "Scenario.Created" for e in errors)
        jobs = connection.execute(text(
            "SELECT jobs FROM scenario_zones WHERE scenario_id = :s AND zone_id = 1"),
            {"s": scenario}).scalar_one()
    assert jobs == 5.0
