"""'Why did this link change' end to end with the real pipeline (relay, dispatcher, worker,
recorder, projector) on Sioux Falls: a fork closes the most loaded link; explaining the link
that gains most requests companion runs with select-link (POST), then names the closure and
the OD pairs that moved from the closed link to the gaining one (GET)."""

from __future__ import annotations

import math
from typing import Any

from api.tntp_import import network_from_tntp_folder
from infra.wiring import Container
from tests.e2e.test_api_flow import wait_completed, whole_pipeline
from tests.integration.api.conftest import SIOUX_FALLS, Api, api, is_problem  # noqa: F401
from tests.integration.conftest import container  # noqa: F401

PARAMETERS = {"gap": 1e-4, "reuse": False}


def simulate(api: Api, scenario: str) -> str:  # noqa: F811
    response = api.post(f"/v1/scenarios/{scenario}/simulations",
                        {"model": "builtin", "parameters": PARAMETERS})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_why_the_link_gaining_most_after_a_closure_names_it_and_the_moved_pairs(
        api: Api, container: Container) -> None:  # noqa: F811
    files = {kind: (SIOUX_FALLS / f"SiouxFalls_{kind}.tntp").read_text()
             for kind in ("net", "trips", "node")}
    network = network_from_tntp_folder(SIOUX_FALLS)
    demand = {(o, d): trips for o, d, trips in network.od_matrix}
    with whole_pipeline(container):
        dataset = api.post("/v1/datasets", {"format": "tntp", "name": "Sioux Falls", **files})
        assert dataset.status_code == 201, dataset.text
        base = api.scenario(dataset=dataset.json()["id"])
        fork = api.post("/v1/scenarios", {"name": "closure", "fork_of": base}).json()["id"]
        run_a = simulate(api, base)
        wait_completed(api, run_a)
        links = api.get(f"/v1/simulations/{run_a}/links").json()["features"]
        closed = max(links, key=lambda f: f["properties"]["flow"])["properties"]["link_id"]
        edit = {"edits": [{"op": "close_link", "link_id": closed}]}
        assert api.post(f"/v1/scenarios/{fork}/edits", edit,
                        headers={"If-Match": '"1"'}).status_code == 200
        run_b = simulate(api, fork)
        wait_completed(api, run_b)
        changes = api.get("/v1/compare", params={"a": run_a, "b": run_b}).json()["links"]
        gaining = max(changes, key=lambda c: c["difference"])["link_id"]
        query = {"a": run_a, "b": run_b, "link": gaining, "top": 1000}

        before = api.get("/v1/compare/explain", params=query).json()
        assert before["od_pairs"] is None and before["followed_links"] == [gaining, closed]
        assert any("POST /v1/compare/explain" in note for note in before["missing"])

        body = {"a": run_a, "b": run_b, "link": gaining}
        is_problem(api.post("/v1/compare/explain", body, role="viewer"), 403)
        asked = api.post("/v1/compare/explain", body)
        assert asked.status_code == 202, asked.text
        assert asked.headers["location"].startswith(f"/v1/compare/explain?a={run_a}&b={run_b}")
        companions = {r["side"]: r for r in asked.json()["runs"]}
        assert companions["a"]["links"] == [gaining, closed]
        assert companions["b"]["links"] == [gaining]  # the closed link cannot be selected
        again = api.post("/v1/compare/explain", body).json()["runs"]
        assert [r["supplied_by"] for r in again] == [r["supplied_by"] for r in
                                                      asked.json()["runs"]]
        pending = api.get("/v1/compare/explain", params=query).json()
        assert pending["od_pairs"] is None or all(
            s["supplied_by"] for s in pending["select_link"])
        for run in companions.values():
            wait_completed(api, run["supplied_by"], timeout=300)

        why = api.get("/v1/compare/explain", params=query).json()
        check_explanation(api, why, closed, gaining, companions, demand)
        is_problem(api.get("/v1/compare/explain", params=query, tenant="rival"), 404)
        is_problem(api.post("/v1/compare/explain", body, tenant="rival"), 404)


def check_explanation(api: Api, why: dict[str, Any], closed: str, gaining: str,  # noqa: F811
                      companions: dict[str, dict[str, Any]],
                      demand: dict[tuple[int, int], float]) -> None:
    assert why["missing"] == [] and why["difference"] > 0 and why["significant"]
    assert [(e["type"], e["subject"], e["only_in"]) for e in why["edits"]] == [
        ("LinkClosed", f"link:{closed}", "b")]
    sources = {s["side"]: s for s in why["select_link"]}
    for side in ("a", "b"):
        assert sources[side]["supplied_by"] == companions[side]["supplied_by"]
    pairs = why["od_pairs"]
    assert pairs
    for side in ("a", "b"):
        flows = [p[f"flow_{side}"] for p in pairs]
        assert all(0 <= flow <= demand[(p["origin"], p["destination"])] + 1e-6
                   for p, flow in zip(pairs, flows, strict=True))
        total = sources[side]["total"]
        assert math.isclose(sum(flows), total, rel_tol=1e-9, abs_tol=1e-6)
        analysis = api.get(f"/v1/simulations/{companions[side]['supplied_by']}"
                           "/select-link/explain-0").json()
        assert analysis["links"] == [gaining]
        assert math.isclose(analysis["classes"]["all"]["total_trips"], total, rel_tol=1e-9)
        # Every trip of the selected demand crosses the link: its flow there is the total.
        assert math.isclose(analysis["link_flows"]["all"][gaining], total, rel_tol=1e-6)
    assert sources["a"]["total"] < sources["b"]["total"]

    def on_closed(pair: dict[str, Any]) -> dict[str, Any] | None:
        return next((e for e in pair["edited_links"] if e["link_id"] == closed), None)

    moved = [p for p in pairs if p["flow_b"] > p["flow_a"] and on_closed(p) is not None]
    assert moved, pairs[:5]
    for pair in moved:
        closure = on_closed(pair)
        assert closure is not None and closure["flow_a"] > 0 and closure["flow_b"] == 0
    top = pairs[0]
    assert top["difference"] > 0 and top in moved
    gained = sum(p["difference"] for p in pairs)
    assert math.isclose(gained, sources["b"]["total"] - sources["a"]["total"], rel_tol=1e-9,
                        abs_tol=1e-6)
    assert sum(p["difference"] for p in moved) > 0.5 * gained
