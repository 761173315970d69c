"""Bad datasets are rejected with per-feature reasons, and nothing is stored."""

from __future__ import annotations

import copy
import json

from infra.http import build_api
from infra.settings import ApiSettings
from infra.wiring import Container
from tests.integration.api.conftest import SIOUX_FALLS, Api, is_problem, tiny_geojson
from tests.integration.conftest import stored_events


def test_bad_features_are_listed_with_index_and_reason(api: Api, container: Container) -> None:
    body = tiny_geojson()
    zones, links = body["zones"]["features"], body["links"]["features"]
    # A bow tie: its two edges cross.
    zones[1]["geometry"]["coordinates"] = [[[0, 0], [0.01, 0.01], [0.01, 0], [0, 0.01], [0, 0]]]
    links[1]["geometry"]["coordinates"][1] = [0.01, 95.0]
    del links[2]["properties"]["capacity"]
    before = stored_events(container)
    problem = is_problem(api.post("/v1/datasets", body), 422)
    found = {(f["collection"], f["index"]) : f["reason"] for f in problem["features"]}
    assert set(found) == {("zones", 1), ("links", 1), ("links", 2)}
    assert "Self-intersection" in found[("zones", 1)]
    assert "latitude" in found[("links", 1)]
    assert found[("links", 2)] == "missing required property 'capacity'"
    assert stored_events(container) == before


def test_a_body_over_the_limit_is_refused(container: Container) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(build_api(container, ApiSettings()),
                        base_url="http://acme.cartolog.example")
    token = container.dev_issuer.issue("acme", "editor")
    body = tiny_geojson()
    padding = copy.deepcopy(body["links"]["features"][0])
    padding["properties"]["comment"] = "x" * 1000
    body["links"]["features"] += [padding] * 60_000  # about 60 MB of JSON
    raw = json.dumps(body).encode()
    assert len(raw) > 60_000_000
    before = stored_events(container)
    response = client.post("/v1/datasets", content=raw, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    is_problem(response, 413)
    assert stored_events(container) == before


def test_tntp_upload(api: Api) -> None:
    files = {kind: (SIOUX_FALLS / f"SiouxFalls_{kind}.tntp").read_text()
             for kind in ("net", "trips", "node")}
    response = api.post("/v1/datasets", {"format": "tntp", "name": "Sioux Falls", **files})
    assert response.status_code == 201, response.text
    assert (response.json()["link_count"], response.json()["zone_count"]) == (76, 24)
    broken = api.post("/v1/datasets", {"format": "tntp", "name": "x", "net": "junk",
                                       "trips": "junk"})
    problem = is_problem(broken, 422)
    assert problem["problems"] and "cartolog-tntp" not in json.dumps(problem)
