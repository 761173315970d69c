"""Bad datasets are rejected with per-feature reasons, and nothing is stored."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

from infra.http import build_api
from infra.settings import ApiSettings
from infra.wiring import Container
from tests.integration.api.conftest import (
    SIOUX_FALLS,
    Api,
    feature,
    is_problem,
    line,
    tiny_geojson,
)
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


def test_a_geojson_export_imports_back_over_http_as_the_same_network(api: Api) -> None:
    files = {kind: (SIOUX_FALLS / f"SiouxFalls_{kind}.tntp").read_text()
             for kind in ("net", "trips", "node")}
    imported = api.post("/v1/datasets", {"format": "tntp", "name": "Sioux Falls", **files})
    assert imported.status_code == 201, imported.text
    scenario = api.post("/v1/scenarios", {"name": "base", "dataset_id": imported.json()["id"]})
    assert scenario.status_code == 201, scenario.text
    exported = api.get(f"/v1/scenarios/{scenario.json()['id']}/export?format=geojson")
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert {f["geometry"]["type"] for f in document["zones"]["features"]} == {"Point"}
    again = api.post("/v1/datasets", document)
    assert again.status_code == 201, again.text
    assert (again.json()["link_count"], again.json()["zone_count"]) == (76, 24)
    app = api.container.app
    original = app.load_network("acme", imported.json()["network_sha256"])
    network = app.load_network("acme", again.json()["network_sha256"])
    where = {n.id: (n.x, n.y) for n in original.nodes}
    # TNTP links have no drawn shape; every GIS export draws one straight (docs/gis.md).
    drawn = tuple(replace(k, geometry=(where[k.from_node], where[k.to_node]))
                  for k in original.links)
    assert (network.nodes, network.links, network.zones, network.od_matrix,
            network.first_thru_node) == (original.nodes, drawn, original.zones,
                                         original.od_matrix, original.first_thru_node)
    assert len(network.od_matrix) == 528


def test_a_reversed_line_is_turned_round_and_a_far_one_refused(api: Api,
                                                                container: Container) -> None:
    body = tiny_geojson()
    links = body["links"]["features"]
    links.append(feature(line((0.01, 0.01), (0.01, 0.0)), id="back", from_node=2, to_node=3,
                         capacity=10.0, length=1.0, free_flow_time=1.0))
    links[3]["geometry"]["coordinates"].reverse()  # drawn from node 3 to node 2
    response = api.post("/v1/datasets", body)
    assert response.status_code == 201, response.text
    network = api.container.app.load_network("acme", response.json()["network_sha256"])
    assert {n.id: (n.x, n.y) for n in network.nodes}[2] == (0.01, 0.0)
    assert network.links[3].geometry == ((0.01, 0.0), (0.01, 0.01))
    links[3]["geometry"]["coordinates"] = [[0.01, 0.0], [0.02, 0.01]]
    before = stored_events(container)
    problem = is_problem(api.post("/v1/datasets", body), 422)
    assert [(f["collection"], f["index"]) for f in problem["features"]] == [("links", 3)]
    assert "its last position is 1112.0 m from its to_node 3" in problem["problems"][0]
    assert stored_events(container) == before
