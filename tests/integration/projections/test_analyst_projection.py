"""An analyst's projection, installed as a package of its own, rebuilt from the log."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.relay import PositionStore
from domain.edits import CloseLink
from infra.wiring import Container
from projections.registry import projection_classes
from tests.conftest import REPO
from tests.integration.conftest import OPERATOR
from tests.integration.logcheck import wait_for
from tests.integration.projections.conftest import projector_env, result_document, running
from tests.unit.test_domain import tiny_network

PACKAGE = '''
"""Flows on closed links across scenarios: closures per scenario, flows per run."""

from cartolog_projections_api import Event, Op, Projection, Put, TableSpec, View


class ClosedLinkFlows(Projection):
    name = "closed_link_flows"
    on_error = "record"
    tables = (
        TableSpec("analyst_closures", ("tenant_id", "scenario_id", "link_id"),
                  {"tenant_id": "text", "scenario_id": "uuid", "link_id": "text",
                   "closed_at": "timestamptz"}),
        TableSpec("analyst_runs", ("tenant_id", "run_id"),
                  {"tenant_id": "text", "run_id": "uuid", "scenario_id": "uuid"}),
        TableSpec("analyst_run_flows", ("tenant_id", "run_id", "link_id"),
                  {"tenant_id": "text", "run_id": "uuid", "scenario_id": "uuid",
                   "link_id": "text", "flow": "double precision"}),
    )

    def handles(self, event: Event) -> bool:
        return event.type in ("Scenario.LinkClosed", "Scenario.Forked",
                              "SimulationRun.Requested", "SimulationRun.Completed")

    def apply(self, event: Event, view: View) -> list[Op]:
        tenant, p = event.tenant_id, event.payload
        if event.type == "Scenario.LinkClosed":
            links = [p["link_id"]]
        elif event.type == "Scenario.Forked":
            links = p["inherited"].get("closed_links", [])
        elif event.type == "SimulationRun.Requested":
            return [Put("analyst_runs", {"tenant_id": tenant, "run_id": event.aggregate_id,
                                         "scenario_id": p["scenario_id"]})]
        else:
            return self.flows(event, view)
        return [Put("analyst_closures", {"tenant_id": tenant, "scenario_id": event.aggregate_id,
                                         "link_id": link, "closed_at": event.occurred_at})
                for link in links]

    def flows(self, event: Event, view: View) -> list[Op]:
        import json

        run = view.get("analyst_runs", (event.tenant_id, event.aggregate_id))
        document = json.loads(self.context.blobs.get(event.tenant_id,
                                                     event.payload["result_sha256"]))
        return [Put("analyst_run_flows", {
            "tenant_id": event.tenant_id, "run_id": event.aggregate_id,
            "scenario_id": run["scenario_id"], "link_id": k["link_id"], "flow": k["flow"]})
            for k in document["links"]]
'''

QUERY = """
    SELECT c.scenario_id, c.link_id, f.scenario_id AS run_scenario, f.flow
    FROM analyst_closures c JOIN analyst_run_flows f
      ON f.tenant_id = c.tenant_id AND f.link_id = c.link_id
    ORDER BY c.link_id, f.flow"""


def install(site: Path) -> None:
    """A package and its dist-info with the entry point, as pip would lay them out."""
    (site / "cartolog_closed_links").mkdir(parents=True)
    (site / "cartolog_closed_links" / "__init__.py").write_text(
        textwrap.dedent(PACKAGE).replace("cartolog_projections_api", "projections.base"))
    info = site / "cartolog_closed_links-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cartolog-closed-links\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[cartolog.projections]\nclosed_link_flows = cartolog_closed_links:ClosedLinkFlows\n")


def test_an_installed_analyst_projection_is_rebuilt_from_the_log(
    own_container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    container, app = own_container, own_container.app
    site = tmp_path / "site"
    install(site)
    monkeypatch.syspath_prepend(str(site))
    assert "closed_link_flows" in projection_classes()

    dataset = app.import_dataset("acme", "tiny", tiny_network(), OPERATOR)
    base = app.create_scenario("acme", dataset, "base", OPERATOR)
    closed = app.create_scenario("acme", dataset, "closed", OPERATOR)
    app.edit_scenario("acme", closed, 1, [CloseLink("a")], OPERATOR)
    fork = app.fork_scenario("acme", closed, "fork", OPERATOR)
    app.edit_scenario("acme", fork, 1, [CloseLink("b")], OPERATOR)
    for scenario, scale in ((base, 10.0), (fork, 20.0)):
        run = app.request_simulation("acme", scenario, "builtin", {}, OPERATOR)
        app.start_attempt("acme", run, 1, "w", OPERATOR)
        sha = container.blobs.put("acme", result_document(["a", "b", "c"], [1, 2], scale))
        app.complete_run("acme", run, 1, sha, {"vehicle_hours": scale}, 1.0, OPERATOR)

    container.ensure_topics()
    positions = PositionStore(container.engine, f"relay:{container.settings.events_topic}")
    with running(container.relay()):
        head = container.reader().head()
        wait_for(lambda: positions.load() >= head, 30, "the relay to publish the log")

    env = {**projector_env(container), "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-m", "infra.cli", "projections", "rebuild",
                           "closed_link_flows"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "rebuilt closed_link_flows" in done.stdout

    with container.engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(text(QUERY))]
        tracked = connection.execute(text(
            "SELECT count(*) FROM projection_tracking WHERE projection = 'closed_link_flows'"
        )).scalar_one()
    s = {base: "base", closed: "closed", fork: "fork"}
    assert sorted((s[c], link, s[r], flow) for c, link, r, flow in rows) == [
        ("closed", "a", "base", 10.0), ("closed", "a", "fork", 20.0),
        ("fork", "a", "base", 10.0), ("fork", "a", "fork", 20.0),
        ("fork", "b", "base", 20.0), ("fork", "b", "fork", 40.0),
    ]
    assert tracked == container.settings.events_partitions
