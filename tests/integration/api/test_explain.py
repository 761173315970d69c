"""'Why did this link change' on the tiny network, each run completed by the worker's code in
process: GET only reads; a run that selected a link supplies itself; POST requests the
companion runs once; then the OD pair that moved from the closed link is named."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from domain.values import Actor
from infra.wiring import Container
from tests.integration.api.conftest import Api, is_problem
from tests.integration.api.test_demand import upload
from tests.integration.api.test_skims import complete_in_process
from tests.integration.projections.conftest import relay_and_projector, wait_caught_up

OPERATOR = Actor("operator", "test")


@pytest.fixture()
def projected(container: Container) -> Iterator[Container]:
    with relay_and_projector(container):
        yield container


def run(api: Api, scenario: str, **parameters: object) -> str:
    run_id = api.container.app.request_simulation(
        "acme", uuid.UUID(scenario), "builtin", {"gap": 1e-6, **parameters}, OPERATOR)
    complete_in_process(api, run_id)
    return str(run_id)


def run_count(api: Api) -> int:
    return len(api.get("/v1/simulations?limit=1000").json()["items"])


def test_explain_requests_companions_once_then_names_the_moved_pair(
        api: Api, projected: Container) -> None:
    scenario = api.scenario()
    assert upload(api, scenario, b"origin,destination,trips\n1,2,2000\n",
                  "csv").status_code == 200
    # Run A selected link a itself; it still lacks the edited link c.
    before = run(api, scenario, select_links=[{"name": "mine", "links": ["a"]}])
    fork = api.post("/v1/scenarios", {"name": "closed", "fork_of": scenario}).json()["id"]
    assert api.post(f"/v1/scenarios/{fork}/edits",
                    {"edits": [{"op": "close_link", "link_id": "c"}]},
                    headers={"If-Match": '"1"'}).status_code == 200
    after = run(api, fork)
    wait_caught_up(projected)
    query = {"a": before, "b": after, "link": "a"}

    runs = run_count(api)
    first = api.get("/v1/compare/explain", params=query).json()
    assert first["od_pairs"] is None and first["followed_links"] == ["a", "c"]
    sources = {s["side"]: s for s in first["select_link"]}
    assert sources["a"]["supplied_by"] == before and sources["a"]["links"] == ["a"]
    assert sources["b"]["supplied_by"] is None and sources["b"]["links"] == ["c"]  # closed
    assert len(first["missing"]) == 2
    assert all('POST /v1/compare/explain {"a": ' in note for note in first["missing"])
    assert run_count(api) == runs  # GET requested nothing

    asked = api.post("/v1/compare/explain", {"a": before, "b": after, "link": "a"})
    assert asked.status_code == 202, asked.text
    companions = {r["side"]: r for r in asked.json()["runs"]}
    assert companions["a"]["links"] == ["a", "c"] and companions["b"]["links"] == ["a"]
    assert all(r["requested"] and r["status"] == "queued" for r in companions.values())
    again = api.post("/v1/compare/explain", {"a": before, "b": after, "link": "a"})
    assert [r["supplied_by"] for r in again.json()["runs"]] == [
        companions["a"]["supplied_by"], companions["b"]["supplied_by"]]
    wait_caught_up(projected)
    assert run_count(api) == runs + 2
    queued = api.get("/v1/compare/explain", params=query).json()
    assert all("is queued" in note for note in queued["missing"])

    for companion in companions.values():
        complete_in_process(api, uuid.UUID(companion["supplied_by"]))
    why = api.get("/v1/compare/explain", params=query).json()
    assert why["missing"] == []
    assert [(e["type"], e["subject"], e["only_in"]) for e in why["edits"]] == [
        ("LinkClosed", "link:c", "b")]
    [pair] = why["od_pairs"]
    assert (pair["origin"], pair["destination"]) == (1, 2)
    assert 0 < pair["flow_a"] < 2000 and pair["flow_b"] == pytest.approx(2000)
    [closed] = pair["edited_links"]
    assert closed["link_id"] == "c" and closed["flow_b"] == 0
    assert closed["flow_a"] == pytest.approx(2000 - pair["flow_a"])
    totals = {s["side"]: s["total"] for s in why["select_link"]}
    assert totals == {"a": pair["flow_a"], "b": pair["flow_b"]}

    # With every link covered, POST requests nothing more.
    settled = api.post("/v1/compare/explain", {"a": before, "b": after, "link": "a"}).json()
    assert [r["requested"] for r in settled["runs"]] == [False, False]
    is_problem(api.post("/v1/compare/explain", {"a": before, "b": after, "link": "zz"}), 404)
    is_problem(api.post("/v1/compare/explain", {"a": before, "b": after}), 422)
    is_problem(api.get("/v1/compare/explain", params=query, tenant="rival"), 404)
    is_problem(api.post("/v1/compare/explain", {"a": before, "b": after, "link": "a"},
                        tenant="rival"), 404)


def test_an_external_models_runs_cannot_have_companions(api: Api, projected: Container) -> None:
    scenario = api.scenario()
    app, document = api.container.app, b'{"links": [{"id": "a", "flow": 5.0}], "zones": []}'
    runs = []
    for _ in range(2):
        run_id = app.request_simulation("acme", uuid.UUID(scenario), "external", {}, OPERATOR)
        app.start_attempt("acme", run_id, 1, "w1", OPERATOR)
        app.complete_run("acme", run_id, 1, api.container.blobs.put("acme", document), {},
                         1.0, OPERATOR)
        runs.append(str(run_id))
    wait_caught_up(projected)
    query = {"a": runs[0], "b": runs[1], "link": "a"}
    why = api.get("/v1/compare/explain", params=query).json()
    assert why["od_pairs"] is None
    assert all("does not produce select-link results" in note for note in why["missing"])
    body = is_problem(api.post("/v1/compare/explain", query), 422)
    assert "select-link needs the builtin model" in body["detail"]
    assert len(api.get("/v1/simulations?limit=1000").json()["items"]) == 2
