"""OGC API - Features Part 1 Core, GeoJSON and OAS30 requirements, checked over the API with
the real pipeline: what an OGC client relies on, one requirement group per test step."""

from __future__ import annotations

import time
from typing import Any

from infra.wiring import Container
from tests.e2e.test_api_flow import wait_completed, whole_pipeline
from tests.integration.api.conftest import Api, api, is_problem  # noqa: F401
from tests.integration.conftest import container  # noqa: F401

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON_CLASS = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"
OAS30 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30"
BASE = "http://acme.cartolog.example/ogc"


def rels(body: dict[str, Any]) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in body["links"]}


def collections_when(api: Api, wanted: int) -> list[dict[str, Any]]:  # noqa: F811
    deadline = time.monotonic() + 60
    while True:
        found: list[dict[str, Any]] = api.get("/ogc/collections").json()["collections"]
        if len(found) >= wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_core_requirements(api: Api, container: Container) -> None:  # noqa: F811
    with whole_pipeline(container):
        scenario = api.scenario()
        run = api.post(f"/v1/scenarios/{scenario}/simulations",
                       {"model": "builtin", "parameters": {"gap": 1e-4}}).json()["id"]
        wait_completed(api, run)
        collections = collections_when(api, 4)
    check_landing_and_definition(api)
    assert {c["id"] for c in collections} == {
        f"scenario-{scenario}-links", f"scenario-{scenario}-zones", f"run-{run}-links",
        f"run-{run}-zones"}
    for described in collections:
        assert rels(described)["items"] == f"{BASE}/collections/{described['id']}/items"
        assert described["extent"]["spatial"]["bbox"][0] == [-0.002, -0.002, 0.012, 0.012]
        one = api.get(f"/ogc/collections/{described['id']}").json()
        assert one["id"] == described["id"] and one["itemType"] == "feature"
    check_items_and_paging(api, f"run-{run}-links")
    check_bbox_and_parameters(api, f"scenario-{scenario}-links")
    check_one_feature(api, f"scenario-{scenario}-links", f"run-{run}-zones")
    check_tenancy(api, f"run-{run}-links")


def check_landing_and_definition(api: Api) -> None:  # noqa: F811
    landing = api.get("/ogc/")
    assert landing.status_code == 200 and landing.headers["content-type"] == "application/json"
    links = rels(landing.json())
    assert links["conformance"] == f"{BASE}/conformance"
    assert links["data"] == f"{BASE}/collections"
    definition = api.get("/ogc/api")
    assert definition.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    document = definition.json()
    assert document["openapi"].startswith("3.0.")
    assert "/collections/{collectionId}/items" in document["paths"]
    assert links["service-desc"] == f"{BASE}/api"
    conforms = api.get("/ogc/conformance").json()["conformsTo"]
    assert {CORE, GEOJSON_CLASS, OAS30} <= set(conforms)


def check_items_and_paging(api: Api, collection: str) -> None:  # noqa: F811
    url = f"/ogc/collections/{collection}/items"
    first = api.get(url, params={"limit": 2})
    assert first.headers["content-type"] == "application/geo+json"
    page = first.json()
    assert page["type"] == "FeatureCollection" and page["numberMatched"] == 3
    assert page["numberReturned"] == 2 and len(page["features"]) == 2
    following = rels(page)["next"]
    assert following.startswith(f"{BASE}/collections/{collection}/items?")
    rest = api.get(following.removeprefix("http://acme.cartolog.example")).json()
    assert "next" not in rels(rest) and rest["numberReturned"] == 1
    ids = [f["id"] for f in page["features"] + rest["features"]]
    assert ids == ["a", "b", "c"]
    assert '"flow":' in first.text and isinstance(page["features"][0]["properties"]["flow"],
                                                  float)
    assert api.get(url, params={"limit": 999_999}).json()["numberReturned"] == 3


def check_bbox_and_parameters(api: Api, collection: str) -> None:  # noqa: F811
    url = f"/ogc/collections/{collection}/items"
    boxed = api.get(url, params={"bbox": "-0.001,-0.001,0.005,0.001"}).json()
    assert [f["id"] for f in boxed["features"]] == ["a", "c"] and boxed["numberMatched"] == 2
    assert '"capacity":1000.0' in api.get(url).text
    for bad in ({"bbox": "1,2,3"}, {"bbox": "5,0,1,1"}, {"limit": "0"}, {"limit": "x"},
                {"colour": "red"}):
        is_problem(api.get(url, params=bad), 400)
    assert api.get(url, params={"datetime": "2020-01-01T00:00:00Z"}).status_code == 200


def check_one_feature(api: Api, links: str, zones: str) -> None:  # noqa: F811
    found = api.get(f"/ogc/collections/{links}/items/c")
    assert found.status_code == 200 and found.headers["content-type"] == "application/geo+json"
    feature = found.json()
    assert feature["type"] == "Feature" and feature["id"] == "c"
    assert feature["properties"]["capacity"] == 500.0
    assert feature["geometry"] == {"type": "LineString", "coordinates": [[0, 0], [0.01, 0.01]]}
    zone = api.get(f"/ogc/collections/{zones}/items/2").json()
    assert zone["id"] == 2 and zone["properties"]["trips"] >= 0
    is_problem(api.get(f"/ogc/collections/{links}/items/zz"), 404)
    is_problem(api.get("/ogc/collections/scenario-nope-links/items"), 404)


def check_tenancy(api: Api, collection: str) -> None:  # noqa: F811
    assert api.get("/ogc/collections", tenant="rival").json()["collections"] == []
    is_problem(api.get(f"/ogc/collections/{collection}/items", tenant="rival"), 404)
    is_problem(api.client.get("/ogc/collections"), 401)
