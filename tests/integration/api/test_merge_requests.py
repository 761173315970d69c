"""Merge requests over HTTP: propose, review as another user, resolve, merge, list, trail."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.loginspect import show
from domain.values import Actor
from infra.wiring import Container
from tests.integration.api.conftest import Api, is_problem
from tests.integration.projections.conftest import relay_and_projector, wait_caught_up

WORKER = Actor("worker-1", "w")


@pytest.fixture()
def projected(container: Container) -> Iterator[Container]:
    with relay_and_projector(container):
        yield container


def as_user(api: Api, sub: str, role: str) -> dict[str, str]:
    token = api.container.dev_issuer.issue("acme", role, sub=sub)
    return {"Authorization": f"Bearer {token}", "Host": "acme.cartolog.example"}


def edit(api: Api, scenario: str, version: int, *edits: dict[str, Any]) -> None:
    response = api.post(f"/v1/scenarios/{scenario}/edits", {"edits": list(edits)},
                        headers={"If-Match": f'"{version}"'})
    assert response.status_code == 200, response.text


def fork_of(api: Api, parent: str) -> str:
    response = api.post("/v1/scenarios", {"name": "proposal", "fork_of": parent})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def completed_run(api: Api, scenario: str, vkt: float) -> str:
    run = api.post(f"/v1/scenarios/{scenario}/simulations", {"model": "builtin"}).json()["id"]
    api.container.app.start_attempt("acme", run, 1, "w1", WORKER)
    api.container.app.complete_run("acme", run, 1, "0" * 64, {"vkt": vkt}, 1.0, WORKER)
    return str(run)


def test_review_by_another_user_then_merge_with_a_resolved_conflict(
        api: Api, projected: Container) -> None:
    parent = api.scenario()
    fork = fork_of(api, parent)
    edit(api, fork, 1, {"op": "modify_link", "link_id": "a", "capacity": 2000.0},
         {"op": "set_zone_attributes", "zone_id": 2, "jobs": 90.0})
    edit(api, parent, 1, {"op": "modify_link", "link_id": "a", "capacity": 800.0})
    base_run, fork_run = completed_run(api, parent, 10.0), completed_run(api, fork, 12.0)
    author = as_user(api, "ana", "editor")
    wait_caught_up(projected)

    opened = api.client.post(f"/v1/scenarios/{fork}/merge-requests",
                             json={"title": "wider link a"}, headers=author)
    assert opened.status_code == 201, opened.text
    request = opened.json()
    path = opened.headers["Location"]
    assert [e["subject"] for e in request["edits"]] == ["link:a", "zone:2"]
    assert [c["subject"] for c in request["conflicts"]] == ["link:a"]
    assert request["comparison"]["a"] == base_run and request["comparison"]["b"] == fork_run
    assert request["comparison"]["indicators"][0]["difference"] == pytest.approx(2.0)
    assert request["comparison"]["significant_links"] == 0

    own = api.client.post(f"{path}/reviews", json={"verdict": "approved"},
                          headers=as_user(api, "ana", "reviewer"))
    is_problem(own, 403)
    is_problem(api.client.post(f"{path}/reviews", json={"verdict": "approved"},
                               headers=as_user(api, "ben", "editor")), 403)
    approved = api.client.post(f"{path}/reviews", json={"verdict": "approved",
                                                       "comment": "good"},
                               headers=as_user(api, "ben", "reviewer"))
    assert approved.json()["verdict"] == "approved"

    refused = is_problem(api.client.post(f"{path}/merge", headers=author), 409)
    assert refused["problems"] == ["link:a: unresolved conflict"]
    resolved = api.client.post(f"{path}/resolutions", json={"subject": "link:a",
                                                            "take": "fork"}, headers=author)
    assert resolved.json()["conflicts"][0]["resolution"] == "fork"
    merged = api.client.post(f"{path}/merge", headers=author)
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["status"] == "merged" and body["merged_version"] == 5

    state = api.get(f"/v1/scenarios/{parent}").json()
    assert state["version"] == 5
    assert state["link_changes"] == {"a": {"capacity": 2000.0}}
    assert state["zone_attributes"] == {"2": {"jobs": 90.0}}
    history = api.get(f"/v1/scenarios/{parent}/history").json()["events"]
    assert [e["correlation_id"] for e in history[2:]] == [body["id"]] * 3
    assert history[-1]["type"] == "Scenario.MergeApplied"
    assert [(t["type"], t["actor"]) for t in body["trail"]] == [
        ("Opened", "ana"), ("Reviewed", "ben"), ("ConflictResolved", "ana"), ("Merged", "ana")]

    replayed = show(api.container.app, uuid.UUID(body["id"]))
    assert [h["type"] for h in replayed["history"]] == [
        "MergeRequest.Opened", "MergeRequest.Reviewed", "MergeRequest.ConflictResolved",
        "MergeRequest.Merged"]
    assert replayed["state"]["status"] == "merged"
    assert show(api.container.app, uuid.UUID(body["id"]), 2)["state"]["verdict"] == "approved"

    wait_caught_up(projected)
    listed = api.get(f"/v1/merge-requests?scenario={parent}").json()["items"]
    assert [(m["id"], m["status"], m["merged_version"]) for m in listed] == [
        (body["id"], "merged", 5)]
    assert api.get("/v1/merge-requests?status=open").json()["items"] == []


def test_a_request_needs_a_fork_with_edits(api: Api) -> None:
    parent = api.scenario()
    is_problem(api.post(f"/v1/scenarios/{parent}/merge-requests", {"title": "x"}), 422)
    fork = fork_of(api, parent)
    is_problem(api.post(f"/v1/scenarios/{fork}/merge-requests", {"title": "x"}), 422)
    is_problem(api.post(f"/v1/scenarios/{fork}/merge-requests", {"title": ""}), 422)


def test_a_forks_demand_matrix_and_classes_are_proposed_and_merged(api: Api) -> None:
    parent = api.scenario()
    fork = fork_of(api, parent)
    author, reviewer = as_user(api, "ana", "editor"), as_user(api, "ben", "reviewer")
    classes = {"classes": [{"name": "car"}, {"name": "truck", "pce": 2.5}]}
    declared = api.client.put(f"/v1/scenarios/{fork}/vehicle-classes", json=classes,
                              headers={**author, "If-Match": '"1"'})
    assert declared.status_code == 200, declared.text
    matrix = b"origin,destination,trips,class\n1,2,30,car\n1,2,4,truck\n"
    uploaded = api.client.post(f"/v1/scenarios/{fork}/demand?format=csv", content=matrix,
                               headers={**author, "If-Match": '"2"',
                                        "Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 200, uploaded.text

    opened = api.client.post(f"/v1/scenarios/{fork}/merge-requests",
                             json={"title": "2040 demand"}, headers=author)
    assert opened.status_code == 201, opened.text
    assert [e["subject"] for e in opened.json()["edits"]] == ["vehicle_classes",
                                                             "demand_matrix"]
    path = opened.headers["Location"]
    diff = api.get(f"/v1/scenarios/{fork}/diff?from=1").json()
    assert diff["subjects"] == ["demand_matrix", "vehicle_classes"]
    api.client.post(f"{path}/reviews", json={"verdict": "approved"}, headers=reviewer)
    merged = api.client.post(f"{path}/merge", headers=author)
    assert merged.status_code == 200, merged.text

    state, proposed = api.get(f"/v1/scenarios/{parent}").json(), api.get(
        f"/v1/scenarios/{fork}").json()
    assert state["demand_matrix"] == proposed["demand_matrix"]
    assert state["vehicle_classes"] == proposed["vehicle_classes"]
    assert api.get(f"/v1/scenarios/{parent}/demand?format=csv").text == api.get(
        f"/v1/scenarios/{fork}/demand?format=csv").text
    run = api.post(f"/v1/scenarios/{parent}/simulations", {"model": "builtin"})
    assert run.status_code == 202, run.text  # the merged classes match the merged matrix
