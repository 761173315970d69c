"""Run history from the read model, a scenario as it was, diffs, archive and restore."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from domain.values import Actor
from infra.wiring import Container
from tests.integration.api.conftest import Api, is_problem
from tests.integration.projections.conftest import relay_and_projector, wait_caught_up

WORKER = Actor("worker-1", "w")


@pytest.fixture()
def projected(container: Container) -> Iterator[Container]:
    with relay_and_projector(container):
        yield container


def edit(api: Api, scenario: str, version: int, *edits: dict[str, Any]) -> Any:
    return api.post(f"/v1/scenarios/{scenario}/edits", {"edits": list(edits)},
                    headers={"If-Match": f'"{version}"'})


def run(api: Api, scenario: str, complete: bool = False) -> str:
    response = api.post(f"/v1/scenarios/{scenario}/simulations", {"model": "builtin"})
    assert response.status_code == 202, response.text
    run_id = str(response.json()["id"])
    if complete:
        app = api.container.app
        app.start_attempt("acme", response.json()["id"], 1, "w1", WORKER)
        app.complete_run("acme", response.json()["id"], 1, "0" * 64, {"vkt": 12.5}, 1.0, WORKER)
    return run_id


def test_runs_are_listed_filtered_and_paged(api: Api, projected: Container) -> None:
    first, second = api.scenario(), api.scenario()
    done = run(api, first, complete=True)
    queued = [run(api, first) for _ in range(2)]
    other = run(api, second)
    wait_caught_up(projected)

    mine = api.get(f"/v1/scenarios/{first}/simulations").json()
    assert {r["id"] for r in mine["items"]} == {done, *queued}
    assert next(r for r in mine["items"] if r["id"] == done)["indicators"] == {"vkt": 12.5}
    completed = api.get(f"/v1/simulations?scenario={first}&status=completed").json()
    assert [r["id"] for r in completed["items"]] == [done]
    everything = api.get("/v1/simulations?limit=100").json()["items"]
    assert {done, *queued, other} <= {r["id"] for r in everything}
    page = api.get(f"/v1/simulations?scenario={first}&limit=2").json()
    rest = api.get(f"/v1/simulations?scenario={first}&limit=2&offset=2").json()
    assert page["next_offset"] == 2 and rest["next_offset"] is None
    assert {r["id"] for r in page["items"] + rest["items"]} == {done, *queued}
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert api.get("/v1/simulations", params={"since": later}).json()["items"] == []
    is_problem(api.get("/v1/simulations?status=bogus"), 422)


def test_a_scenario_as_it_was_and_the_edits_between_versions(api: Api) -> None:
    scenario = api.scenario()
    edit(api, scenario, 1, {"op": "close_link", "link_id": "a"})
    edit(api, scenario, 2, {"op": "set_zone_attributes", "zone_id": 1, "population": 5.0},
         {"op": "modify_link", "link_id": "b", "capacity": 300.0})
    then = api.get(f"/v1/scenarios/{scenario}?version=2").json()
    assert then["closed_links"] == ["a"] and then["link_changes"] == {}
    diff = api.get(f"/v1/scenarios/{scenario}/diff?from=2&to=4").json()
    assert [e["type"] for e in diff["edits"]] == ["ZoneAttributesSet", "LinkModified"]
    assert diff["subjects"] == ["link:b", "zone:1"]
    assert diff["edits"][1]["payload"] == {"link_id": "b", "changes": {"capacity": 300.0}}
    everything = api.get(f"/v1/scenarios/{scenario}/diff?from=1").json()
    assert everything["to_version"] == 4 and len(everything["edits"]) == 3
    is_problem(api.get(f"/v1/scenarios/{scenario}/diff?from=3&to=9"), 422)


def test_archive_then_restore(api: Api) -> None:
    scenario = api.scenario()
    is_problem(api.post(f"/v1/scenarios/{scenario}/archive", {"reason": "x"}), 428)
    archived = api.post(f"/v1/scenarios/{scenario}/archive", {"reason": "superseded"},
                        headers={"If-Match": '"1"'})
    assert archived.status_code == 200 and archived.json()["archived"] is True
    assert archived.headers["ETag"] == '"2"'
    is_problem(edit(api, scenario, 2, {"op": "close_link", "link_id": "a"}), 409)
    is_problem(api.post(f"/v1/scenarios/{scenario}/simulations", {"model": "builtin"}), 422)
    is_problem(api.post(f"/v1/scenarios/{scenario}/restore", {}, headers={"If-Match": '"1"'}),
               412)
    restored = api.post(f"/v1/scenarios/{scenario}/restore", {}, headers={"If-Match": '"2"'})
    assert restored.json()["archived"] is False
    assert edit(api, scenario, 3, {"op": "close_link", "link_id": "a"}).status_code == 200
    is_problem(api.post(f"/v1/scenarios/{scenario}/archive", {}, role="viewer",
                        headers={"If-Match": '"4"'}), 403)


def finished_run(api: Api, scenario: str, flows: dict[str, float], gap: float) -> str:
    """A completed run whose result document holds these link flows and relative gap."""
    run_id = run(api, scenario)
    document = {"links": [{"id": k, "flow": v} for k, v in flows.items()], "zones": []}
    sha = api.container.blobs.put("acme", json.dumps(document).encode())
    app = api.container.app
    app.start_attempt("acme", uuid.UUID(run_id), 1, "w1", WORKER)
    app.complete_run("acme", uuid.UUID(run_id), 1, sha, {"relative_gap": gap}, 1.0, WORKER)
    return run_id


def test_compare_hides_changes_within_convergence_noise(api: Api, projected: Container) -> None:
    scenario = api.scenario()
    first = finished_run(api, scenario, {"a": 900.0, "b": 900.0, "c": 300.0}, 1e-3)
    second = finished_run(api, scenario, {"a": 903.0, "b": 903.0, "c": 297.0}, 1e-3)
    closed = api.post("/v1/scenarios", {"name": "closed", "fork_of": scenario}).json()["id"]
    edit(api, closed, 1, {"op": "close_link", "link_id": "c"})
    third = finished_run(api, closed, {"a": 1200.0, "b": 1200.0, "c": 0.0}, 1e-3)
    wait_caught_up(projected)

    same = api.get(f"/v1/compare?a={first}&b={second}").json()
    assert same["links"] == [] and same["significant_links"] == 0
    assert same["links_within_noise"] == 3 and same["relative_gap_a"] == 1e-3
    everything = api.get(f"/v1/compare?a={first}&b={second}&all=true").json()["links"]
    assert {k["link_id"] for k in everything} == {"a", "b", "c"}
    assert all(k["noise_a"] > 0 and not k["significant"] for k in everything)

    changed = api.get(f"/v1/compare?a={first}&b={third}").json()
    assert {k["link_id"] for k in changed["links"]} == {"a", "b", "c"}
    assert next(k for k in changed["links"] if k["link_id"] == "c")["certain"]


def test_explain_names_the_closure_behind_a_gain(api: Api, projected: Container) -> None:
    scenario = api.scenario()
    edit(api, scenario, 1, {"op": "set_zone_attributes", "zone_id": 1, "population": 150.0})
    before = finished_run(api, scenario, {"a": 900.0, "b": 900.0, "c": 300.0}, 1e-3)
    closed = api.post("/v1/scenarios", {"name": "closed", "fork_of": scenario}).json()["id"]
    edit(api, closed, 1, {"op": "close_link", "link_id": "c"})
    after = finished_run(api, closed, {"a": 1200.0, "b": 1200.0, "c": 0.0}, 1e-3)
    wait_caught_up(projected)

    why = api.get(f"/v1/compare/explain?a={before}&b={after}&link=a").json()
    assert why["difference"] == 300.0 and why["significant"]
    assert [(e["type"], e["subject"], e["only_in"], e["on_link"], e["adjacent"])
            for e in why["edits"]] == [("LinkClosed", "link:c", "b", False, True)]
    assert why["od_pairs"] is None and "POST /v1/compare/explain" in why["missing"][0]
    back = api.get(f"/v1/compare/explain?a={after}&b={before}&link=c").json()
    assert [(e["only_in"], e["on_link"]) for e in back["edits"]] == [("a", True)]
    is_problem(api.get(f"/v1/compare/explain?a={before}&b={after}&link=zz"), 404)


@pytest.mark.parametrize("since", ["2000-01-01T00:00:00+16:00", "2000-01-01T00:00:00-23:59",
                                   "2026-01-01T00:00:00", "0001-01-01T00:00:00+05:00"])
def test_since_takes_any_iso_offset_or_says_why_not(api: Api, since: str) -> None:
    response = api.get("/v1/simulations", params={"since": since})
    if since.startswith("0001"):  # before year 1 in UTC
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    else:
        assert response.status_code == 200, response.text
