"""Events stored before today's rules (a log written by an older Cartolog) still replay: the
aggregates rebuild from them, the live read model and a rebuild from the store project them,
and every tenant is served (decision 0010)."""

from __future__ import annotations

import math
import uuid
from typing import Any

from sqlalchemy import text

from api.json_body import loads
from domain.dataset import Dataset
from domain.scenario import Scenario
from domain.simulation import SimulationRun
from domain.values import Link, Network, Node, Zone
from infra import projections_wiring as wiring
from infra.wiring import Container, build
from tests.integration.api.conftest import Api, api  # noqa: F401
from tests.integration.conftest import OPERATOR
from tests.integration.projections.conftest import (
    checksums,
    differences,
    dumps,
    relay_and_projector,
    wait_caught_up,
)
from tests.unit.test_domain import tiny_network

OUT_OF_WORLD = Network(
    (Node(1, 999.0, 999.0), Node(2, -500.0, 95.0), Node(3, 0.0, 0.0)),
    (Link("a", 1, 2, math.nan, -1.0, 1.0), Link("b", 2, 3, 1e300, 1.0, 1.0)),
    (Zone(1, 1, math.inf, -5.0),))
BAD_LINK = {"id": "old", "from_node": 1, "to_node": 3, "capacity": -10.0, "length": math.nan,
            "free_flow_time": 1.0, "b": 0.15, "power": 4.0, "toll": 0.0, "link_type": 1,
            "lanes": 0.0, "geometry": [[999.0, 999.0], [1000.0, 1000.0]]}


def old_dataset(container: Container) -> uuid.UUID:
    """A dataset whose network breaks today's rules, recorded without the import's check."""
    sha = container.blobs.put("acme", OUT_OF_WORLD.canonical_json())
    dataset = Dataset.record_import(uuid.uuid4(), "acme", "old", sha, (3, 2, 1), "geojson",
                                    OPERATOR)
    container.app.save(dataset)
    return dataset.id


def old_edits(container: Container, scenario_id: uuid.UUID) -> None:
    """Edits as an older Cartolog recorded them: events emitted without today's checks."""
    app = container.app
    scenario = app.get_scenario("acme", scenario_id)
    scenario._emit(Scenario.LinkAdded, OPERATOR, link=BAD_LINK)
    scenario._emit(Scenario.LinkModified, OPERATOR, link_id="a",
                   changes={"capacity": -5.0, "speed": math.inf})
    scenario._emit(Scenario.ZoneAttributesSet, OPERATOR, zone_id=1, population=math.nan,
                   jobs=1e300)
    scenario._emit(Scenario.DemandParametersChanged, OPERATOR, trip_rate=math.inf,
                   deterrence="power", beta=-1.0)
    app.save(scenario)


def old_run(container: Container, scenario_id: uuid.UUID) -> uuid.UUID:
    run = SimulationRun._start(SimulationRun.Requested, uuid.uuid4(), "acme", OPERATOR,
                               scenario_id=scenario_id, scenario_version=1, model="builtin",
                               parameters={"gap": math.nan, "max_iterations": math.inf,
                                           "note": "n\x00" + "x" * 5000},
                               max_attempts=3, idempotency_key=None)
    container.app.save(run)
    return run.id


def test_aggregates_replay_events_that_break_todays_rules(container: Container) -> None:
    dataset = old_dataset(container)
    scenario = container.app.create_scenario("acme", dataset, "old", OPERATOR)
    old_edits(container, scenario)
    run = old_run(container, scenario)
    fresh = build(container.settings)  # no cache: every aggregate comes from the store
    try:
        replayed = fresh.app.get_scenario("acme", scenario)
        assert replayed.version == 5
        assert replayed.added_links["old"]["capacity"] == -10.0
        assert math.isinf(replayed.link_changes["a"]["speed"])
        assert math.isnan(replayed.zone_attributes["1"]["population"])
        assert math.isinf(replayed.demand["trip_rate"])
        assert math.isnan(fresh.app.get_run("acme", run).parameters["gap"])
        assert fresh.app.get_dataset("acme", dataset).node_count == 3
    finally:
        fresh.close()


def test_the_read_model_projects_them_and_serves_every_tenant(
        container: Container, api: Api) -> None:  # noqa: F811
    with relay_and_projector(container):
        scenario = container.app.create_scenario("acme", old_dataset(container), "old",
                                                 OPERATOR)
        old_edits(container, scenario)
        run = old_run(container, scenario)
        rival = container.app.create_scenario(
            "rival", container.app.import_dataset("rival", "tiny", tiny_network(), OPERATOR),
            "theirs", OPERATOR)
        wait_caught_up(container)
        live, live_rows = checksums(container), dumps(container)
        for name in ("read_model",):
            applied, used = wiring.rebuild(container, name, "store")
            assert used == "store" and applied == container.reader().head()
        assert checksums(container) == live, differences(live_rows, dumps(container))
    served = served_bodies(api, scenario, rival)
    with container.engine.connect() as connection:
        parameters = connection.execute(text(
            "SELECT parameters FROM simulation_runs WHERE run_id = :r"), {"r": run}).scalar_one()
    assert parameters == {"gap": None, "max_iterations": None, "note": "n\ufffd" + "x" * 5000}
    for path in (f"/v1/scenarios/{scenario}", f"/v1/scenarios/{scenario}/history",
                 f"/v1/simulations/{run}"):
        response = api.get(path)
        assert response.status_code == 200, (path, response.text)
        loads(response.text)  # strict JSON: no NaN or Infinity literal
    assert served["acme"]["items"][0]["id"] == str(scenario)
    assert served["rival"]["items"][0]["id"] == str(rival)


def served_bodies(api: Api, scenario: uuid.UUID, rival: uuid.UUID) -> dict[str, Any]:  # noqa: F811
    found: dict[str, Any] = {}
    for tenant, subject in (("acme", scenario), ("rival", rival)):
        listed = api.get("/v1/scenarios", tenant=tenant)
        assert listed.status_code == 200, listed.text
        found[tenant] = listed.json()
        for layer in ("links", "zones"):
            tile = api.get(f"/v1/tiles/{layer}/0/0/0.mvt?scenario={subject}", tenant=tenant)
            assert tile.status_code == 200, (tenant, layer, tile.text)
    return found
