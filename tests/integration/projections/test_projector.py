"""The projector on the real broker and PostGIS: rows, tracking, de-duplication, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import replace

from sqlalchemy import text

from adapters.kafka import high_watermarks
from adapters.projector.base import Record
from adapters.projector.ddl import ensure_tables
from adapters.projector.queries import lag_metrics, statuses
from adapters.projector.runner import ProjectionRunner
from adapters.read_your_writes import wait_for_version
from domain.edits import CloseLink, SetZoneAttributes
from infra.wiring import Container
from projections.base import Context, Event, Op, Projection, ProjectionError, Put, TableSpec, View
from tests.conftest import REPO
from tests.integration.conftest import OPERATOR
from tests.integration.logcheck import wait_for
from tests.integration.projections.conftest import (
    Workload,
    counts,
    projector_env,
    relay_and_projector,
    wait_caught_up,
)
from tests.unit.test_domain import tiny_network


def test_projector_builds_the_read_model(own_container: Container) -> None:
    container = own_container  # a database of its own: the counts below are exact
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


class Strict(Projection):
    """Stops at the first event it cannot apply."""

    name = "strict_test"
    on_error = "stop"
    tables = (TableSpec("strict_test_rows", ("tenant_id", "aggregate_id"),
                        {"tenant_id": "text", "aggregate_id": "uuid", "version": "integer"}),)

    def apply(self, event: Event, view: View) -> list[Op]:
        if event.payload.get("display_name") == "poison":
            raise ProjectionError("poison pill")
        return [Put("strict_test_rows", {"tenant_id": event.tenant_id,
                                         "aggregate_id": event.aggregate_id,
                                         "version": event.aggregate_version})]


def envelope_record(offset: int, tenant: str, display_name: str) -> Record:
    aggregate = str(uuid.uuid5(uuid.NAMESPACE_URL, tenant))
    document = {"type": "Tenant.Registered", "tenant_id": tenant, "aggregate_type": "Tenant",
                "aggregate_id": aggregate, "aggregate_version": 1, "position": offset + 1,
                "occurred_at": "2026-01-01T00:00:00+00:00", "event_id": str(uuid.uuid4()),
                "payload": {"display_name": display_name}}
    return Record("strict-topic", 0, offset, json.dumps(document).encode())


def test_the_stop_policy_halts_at_the_bad_event_and_status_shows_it(
    own_container: Container,
) -> None:
    engine = own_container.engine
    ensure_tables(engine, [Strict(Context(own_container.blobs))])
    runner = ProjectionRunner(engine, Strict(Context(own_container.blobs)))
    records = [envelope_record(0, "t1", "one"), envelope_record(1, "t1", "one again"),
               envelope_record(2, "t2", "poison"), envelope_record(3, "t3", "three")]
    outcome = runner.process(records)
    assert (outcome.applied, outcome.duplicates) == (1, 1)
    assert outcome.stopped is not None and "poison pill" in outcome.stopped
    assert runner.tracked_offsets("strict-topic") == {0: 2}  # resumes at the bad event
    assert runner.process([envelope_record(3, "t3", "three")]).applied == 0
    (status,) = statuses(engine, ["strict_test"], "strict-topic")
    assert status.state == "stopped" and "strict-topic[0]@2" in (status.last_error or "")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM strict_test_rows")).scalar() == 1


def test_status_command_shows_position_lag_and_last_error(container: Container) -> None:
    Workload(container, ("acme",)).do(1, 0, 1, 1.0)
    with relay_and_projector(container) as projector:
        wait_caught_up(container)
        wait_for(lambda: projector.lag and sum(projector.lag.values()) == 0, 30, "lag 0")
    done = subprocess.run([sys.executable, "-m", "infra.cli", "projections", "status", "--json"],
                          cwd=REPO, env=projector_env(container), capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    found = {s["name"]: s for s in json.loads(done.stdout)}
    assert set(found) >= {"read_model", "notifications", "bi_sync"}
    read_model = found["read_model"]
    assert read_model["state"] == "running" and read_model["position"] > 0
    ends = high_watermarks(container.bootstrap_servers, container.settings.events_topic)
    assert read_model["lag"] == 0
    assert {int(p): o for p, o in read_model["offsets"].items()} == {
        p: end for p, end in ends.items() if end > 0}
    metrics = lag_metrics(container.engine, container.settings.events_topic)
    assert 'cartolog_projection_lag{projection="read_model",partition="0"} 0' in metrics


def manual_analyzes(container: Container, table: str) -> int:
    with container.engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"),
            {"t": table}).scalar_one())


def test_a_large_results_write_is_analyzed_and_a_small_one_is_not(
        own_container: Container) -> None:
    container = own_container  # a database of its own: the statistics counters are its own
    workload = Workload(container, ("acme",))
    with relay_and_projector(container, ["read_model"]) as projector:
        for kind in (0, 1, 4):  # a dataset, a scenario, a completed run: 3 link results
            workload.do(kind, 0, 1, 250.0)
        wait_caught_up(container, ["read_model"])
        assert manual_analyzes(container, "link_results") == 0
        projector.analyze_rows = 3  # what 10,000 is to a city, 3 is to this network
        workload.do(4, 0, 1, 260.0)
        wait_caught_up(container, ["read_model"])
        # The cumulative statistics are flushed to readers within about a second.
        wait_for(lambda: manual_analyzes(container, "link_results") >= 1, 10,
                 "an ANALYZE of link_results")
        assert manual_analyzes(container, "scenario_links") == 0  # no rows written this time
