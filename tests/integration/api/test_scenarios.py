"""Datasets and scenarios over HTTP: create, fork, edits with If-Match, history, versions."""

from __future__ import annotations

from tests.integration.api.conftest import Api, is_problem


def test_create_get_and_list(api: Api) -> None:
    dataset = api.dataset()
    assert api.get(f"/v1/datasets/{dataset}").json()["link_count"] == 3
    created = api.post("/v1/scenarios", {"name": "base", "dataset_id": dataset})
    assert created.status_code == 201
    scenario = created.json()["id"]
    assert created.headers["location"] == f"/v1/scenarios/{scenario}"
    got = api.get(f"/v1/scenarios/{scenario}")
    assert got.headers["etag"] == '"1"' and got.json()["name"] == "base"


def test_edits_need_if_match_and_refuse_a_stale_version(api: Api) -> None:
    scenario = api.scenario()
    edits = {"edits": [{"op": "close_link", "link_id": "a"}]}
    path = f"/v1/scenarios/{scenario}/edits"
    is_problem(api.post(path, edits), 428)
    done = api.post(path, edits, headers={"If-Match": '"1"'})
    assert done.status_code == 200, done.text
    assert done.json()["version"] == 2 and done.headers["etag"] == '"2"'
    again = {"edits": [{"op": "modify_link", "link_id": "b", "capacity": 10.0}]}
    is_problem(api.post(path, again, headers={"If-Match": '"1"'}), 412)
    assert api.get(f"/v1/scenarios/{scenario}").json()["closed_links"] == ["a"]
    assert api.get(f"/v1/scenarios/{scenario}?version=1").json()["closed_links"] == []
    history = api.get(f"/v1/scenarios/{scenario}/history").json()["events"]
    assert [e["type"] for e in history] == ["Scenario.Created", "Scenario.LinkClosed"]
    assert history[1]["actor"] == "editor@acme" and history[1]["payload"] == {"link_id": "a"}


def test_invalid_edits_list_every_problem(api: Api) -> None:
    scenario = api.scenario()
    edits = {"edits": [{"op": "close_link", "link_id": "zz"},
                       {"op": "set_zone_attributes", "zone_id": 99, "jobs": 1.0}]}
    body = is_problem(api.post(f"/v1/scenarios/{scenario}/edits", edits,
                               headers={"If-Match": "1"}), 422)
    assert len(body["problems"]) == 2 and "edit 0" in body["problems"][0]


def test_fork_at_a_version(api: Api) -> None:
    scenario = api.scenario()
    api.post(f"/v1/scenarios/{scenario}/edits",
             {"edits": [{"op": "close_link", "link_id": "a"}]}, headers={"If-Match": "1"})
    fork = api.post("/v1/scenarios", {"name": "fork", "fork_of": scenario, "fork_version": 1})
    assert fork.status_code == 201, fork.text
    assert fork.json()["fork_of"] == scenario and fork.json()["closed_links"] == []
