"""Hostile input over HTTP: every door answers a 422 problem listing each broken rule, and
nothing is stored (the real PostGIS store)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from infra.wiring import Container
from tests.integration.api.conftest import Api, is_problem, tiny_geojson
from tests.integration.conftest import stored_events
from tests.integration.test_cli import cartolog


def raw_post(api: Api, path: str, text: str, **headers: str) -> Any:
    return api.client.post(path, content=text.encode(), headers={
        **api.headers("acme", "editor"), "Content-Type": "application/json", **headers})


def link(**changes: Any) -> dict[str, Any]:
    return {"id": "new", "from_node": 1, "to_node": 3, "capacity": 10, "length": 1,
            "free_flow_time": 1, **changes}


def test_the_nul_edit_is_refused_and_nothing_is_stored(api: Api, container: Container) -> None:
    scenario = api.scenario()
    before = stored_events(container)
    body = {"edits": [{"op": "add_link", "link": link(id="nul\u0000link")}]}
    problem = is_problem(api.post(f"/v1/scenarios/{scenario}/edits", body,
                                  headers={"If-Match": '"1"'}), 422)
    assert any("control characters" in p for p in problem["problems"]), problem
    assert stored_events(container) == before


@pytest.mark.parametrize("parameters", ['{"gap": NaN}', '{"max_iterations": Infinity}',
                                        '{"gap": -Infinity}', '{"gap": 1e999}'])
def test_nan_and_infinity_literals_are_not_json(api: Api, container: Container,
                                                parameters: str) -> None:
    scenario = api.scenario()
    before = stored_events(container)
    response = raw_post(api, f"/v1/scenarios/{scenario}/simulations",
                        f'{{"model": "builtin", "parameters": {parameters}}}')
    problem = is_problem(response, 422)
    assert "finite" in json.dumps(problem) or "range" in json.dumps(problem), problem
    assert stored_events(container) == before


@pytest.mark.parametrize("geometry", [[[999, 999], [1000, 1000]],
                                      [[1e300, 1e300], [-1e300, 1e300]]])
def test_edits_apply_the_import_coordinate_rule(api: Api, container: Container,
                                                geometry: list[list[float]]) -> None:
    scenario = api.scenario()
    before = stored_events(container)
    body = {"edits": [{"op": "add_link", "link": link(geometry=geometry)}]}
    problem = is_problem(api.post(f"/v1/scenarios/{scenario}/edits", body,
                                  headers={"If-Match": '"1"'}), 422)
    assert any("outside WGS84" in p for p in problem["problems"]), problem
    assert stored_events(container) == before


def test_every_broken_rule_is_listed(api: Api, container: Container) -> None:
    scenario = api.scenario()
    before = stored_events(container)
    edits = [{"op": "add_link", "link": link(id="x\u0007", to_node=99, capacity=-1, lanes=0,
                                             geometry=[[0, 91], [0, 0]])},
             {"op": "set_zone_attributes", "zone_id": 1, "population": -1, "jobs": 1e13},
             {"op": "modify_link", "link_id": "a", "capacity": 0},
             {"op": "change_demand_parameters", "deterrence": "magic", "beta": -2}]
    problem = is_problem(api.post(f"/v1/scenarios/{scenario}/edits", {"edits": edits},
                                  headers={"If-Match": '"1"'}), 422)
    expected = ["edit 0: link 'x\\x07': id must not contain control characters",
                "edit 0: link 'x\\x07': unknown node 99",
                "edit 0: link 'x\\x07': capacity must be a finite, positive",
                "edit 0: link 'x\\x07': lanes must be a finite, positive",
                "edit 0: link 'x\\x07': geometry position 0: (0, 91) is outside WGS84",
                "edit 1: population must be a finite, non-negative",
                "edit 1: jobs must be at most 1e+12", "edit 2: capacity must be a finite, positive",
                "edit 3: beta must be a finite, non-negative", "edit 3: deterrence must be one of"]
    missing = [e for e in expected if not any(p.startswith(e) for p in problem["problems"])]
    assert missing == [], problem["problems"]
    assert stored_events(container) == before


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/datasets", {**tiny_geojson(), "name": "bad\u0000name"}),
    ("/v1/datasets", {"format": "tntp", "name": "t\u0000", "net": "1 2", "trips": "x"}),
    ("/v1/bi/targets", {"name": "bi\u0000", "kind": "builtin"}),
    ("/v1/bi/targets", {"name": "bi", "kind": "external", "trigger_url": "http://x/\u0000",
                        "status_url": "http://x/s"}),
])
def test_names_and_urls_with_nul_are_refused(api: Api, container: Container, path: str,
                                             body: dict[str, Any]) -> None:
    before = stored_events(container)
    response = api.post(path, body, role="admin")
    is_problem(response, 422)
    assert stored_events(container) == before


def test_scenario_names_and_versions_out_of_range_are_refused(api: Api,
                                                              container: Container) -> None:
    scenario = api.scenario()
    before = stored_events(container)
    for body in ({"name": "s\u0000", "fork_of": scenario},
                 {"name": "x" * 10_000, "fork_of": scenario},
                 {"name": "f", "fork_of": scenario, "fork_version": 2**70}):
        is_problem(api.post("/v1/scenarios", body), 422)
    response = api.post(f"/v1/scenarios/{scenario}/simulations", {"scenario_version": 2**70})
    is_problem(response, 422)
    assert stored_events(container) == before


def test_a_tntp_upload_lists_each_bad_line(api: Api, container: Container) -> None:
    net = ("<END OF METADATA>\n1 2 10 1 1 0.15 4 ;\n2 3 NaN 1 1 0.15 4 ;\n"
           "1 3 1e999 1 1 0.15 4 ;\n")
    before = stored_events(container)
    trips = "<NUMBER OF ZONES> 1\n<END OF METADATA>\n"
    body = {"format": "tntp", "name": "t", "net": net, "trips": trips}
    problem = is_problem(api.post("/v1/datasets", body), 422)
    assert problem["problems"] == ["net line 3: capacity must be a finite number, not NaN",
                                   "net line 4: capacity must be a finite number, not 1e999"]
    assert stored_events(container) == before


@pytest.mark.parametrize(("args", "error"), [
    (("tenant", "create", "city", "--display-name", "City\x01Hall"),
     "a display name must not contain control characters (NUL, tab, newline ...)"),
    (("tenant", "create", "city", "--display-name", "x" * 10_000),
     "a display name must be 1 to 200 characters"),
    (("token", "issue", "--tenant", "acme", "--role", "editor", "--sub", "ed\x1bitor"),
     "--sub must not contain control characters (NUL, tab, newline ...)"),
    (("token", "issue", "--tenant", "acme", "--role", "editor", "--hours", "nan"),
     "--hours must be positive and at most a year"),
    (("token", "issue", "--tenant", "acme\n", "--role", "editor"),
     "--tenant 'acme\\n' is not a tenant name (a DNS label)"),
])
def test_the_cli_refuses_in_one_line(fresh_database_url: str, args: tuple[str, ...],
                                     error: str) -> None:
    done = cartolog(*args, database_url=fresh_database_url)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"cartolog: error: {error}"]


@pytest.mark.parametrize("edit", [
    {"op": "set_zone_attributes", "zone_id": 1, "population": True},
    {"op": "set_zone_attributes", "zone_id": "1", "population": 5},
    {"op": "set_zone_attributes", "zone_id": 1, "jobs": "5"},
    {"op": "modify_link", "link_id": "a", "capacity": False},
    {"op": "add_link", "link": link(from_node=1.0)},
    {"op": "add_link", "link": link(capacity="10")},
    {"op": "add_link", "link": link(geometry=[[True, 0], [0, 0]])},
    {"op": "change_demand_parameters", "beta": "0.1"},
    {"op": "change_demand_parameters"},
])
def test_an_edit_takes_json_numbers_and_changes_something(
        api: Api, container: Container, edit: dict[str, Any]) -> None:
    scenario = api.scenario()
    before = stored_events(container)
    is_problem(api.post(f"/v1/scenarios/{scenario}/edits", {"edits": [edit]},
                        headers={"If-Match": '"1"'}), 422)
    assert stored_events(container) == before


def test_a_link_drawn_with_one_position_is_refused(api: Api, container: Container) -> None:
    scenario = api.scenario()
    before = stored_events(container)
    body = {"edits": [{"op": "add_link", "link": link(geometry=[[0.0, 0.0]])}]}
    problem = is_problem(api.post(f"/v1/scenarios/{scenario}/edits", body,
                                  headers={"If-Match": '"1"'}), 422)
    assert any("at least 2 positions" in p for p in problem["problems"]), problem
    assert stored_events(container) == before
    assert api.get(f"/v1/scenarios/{scenario}/export?format=geojson").status_code == 200


def test_an_added_links_line_is_read_as_an_import_reads_it(api: Api, container: Container
                                                          ) -> None:
    """The importer's rule (0714): drawn from the to_node, turned round; an end more than
    1 m from its node, refused. An edit may not store a line the importer would refuse."""
    scenario = api.scenario()
    before = stored_events(container)
    far = {"edits": [{"op": "add_link", "link": link(geometry=[[0, 0], [0.02, 0.02]])}]}
    problem = is_problem(api.post(f"/v1/scenarios/{scenario}/edits", far,
                                  headers={"If-Match": '"1"'}), 422)
    assert len(problem["problems"]) == 1
    assert problem["problems"][0].startswith(
        "edit 0: the line does not join its nodes: its last position is 1572.")
    assert problem["problems"][0].endswith(
        " m from its to_node 3 (at most 1 m; the network places its nodes)")
    assert stored_events(container) == before
    drawn_back = [[0.01, 0.01], [0.004, 0.006], [0.0, 0.0]]  # node 3 to node 1
    body = {"edits": [{"op": "add_link", "link": link(geometry=drawn_back)}]}
    done = api.post(f"/v1/scenarios/{scenario}/edits", body, headers={"If-Match": '"1"'})
    assert done.status_code == 200, done.text
    stored = container.app.get_scenario("acme", uuid.UUID(scenario)).added_links["new"]
    assert [list(p) for p in stored["geometry"]] == drawn_back[::-1]
