"""An API client over the real PostGIS: tokens from the dev issuer, tenants by Host."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.http import build_api
from infra.settings import ApiSettings
from infra.wiring import Container

SIOUX_FALLS = Path(__file__).resolve().parents[2] / "data" / "networks" / "SiouxFalls"


class Api:
    """A TestClient plus token helpers: `headers("acme", "editor")`."""

    def __init__(self, container: Container, client: TestClient) -> None:
        self.container = container
        self.client = client

    def token(self, tenant: str, role: str) -> str:
        return self.container.dev_issuer.issue(tenant, role, sub=f"{role}@{tenant}")

    def headers(self, tenant: str = "acme", role: str = "editor", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, role)}",
                "Host": f"{tenant}.cartolog.example", **extra}

    def get(self, path: str, tenant: str = "acme", role: str = "viewer", **kw: Any) -> Any:
        headers = {**self.headers(tenant, role), **kw.pop("headers", {})}
        return self.client.get(path, headers=headers, **kw)

    def post(self, path: str, body: Any = None, tenant: str = "acme", role: str = "editor",
             **kw: Any) -> Any:
        headers = {**self.headers(tenant, role), **kw.pop("headers", {})}
        return self.client.post(path, json=body, headers=headers, **kw)

    def dataset(self, tenant: str = "acme") -> str:
        response = self.post("/v1/datasets", tiny_geojson(), tenant=tenant)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def scenario(self, tenant: str = "acme", dataset: str | None = None) -> str:
        body = {"name": "base", "dataset_id": dataset or self.dataset(tenant)}
        response = self.post("/v1/scenarios", body, tenant=tenant)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture()
def api(container: Container) -> Iterator[Api]:
    settings = ApiSettings(read_wait_s=0.2, rate_per_second=1000, rate_burst=1000)
    with TestClient(build_api(container, settings), base_url="http://acme.cartolog.example",
                    raise_server_exceptions=False) as client:
        yield Api(container, client)


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def line(*points: tuple[float, float]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [list(p) for p in points]}


def square(x: float, y: float, size: float = 0.004) -> dict[str, Any]:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def tiny_geojson(name: str = "tiny") -> dict[str, Any]:
    """Three nodes, three links, two zones (the domain tests' tiny network) as GeoJSON."""
    links = [
        feature(line((0.0, 0.0), (0.01, 0.0)), id="a", from_node=1, to_node=2, capacity=1000.0,
                length=1.0, free_flow_time=1.0),
        feature(line((0.01, 0.0), (0.01, 0.01)), id="b", from_node=2, to_node=3,
                capacity=1000.0, length=1.0, free_flow_time=1.0),
        feature(line((0.0, 0.0), (0.01, 0.01)), id="c", from_node=1, to_node=3, capacity=500.0,
                length=2.0, free_flow_time=3.0),
    ]
    zones = [feature(square(-0.002, -0.002), id=1, centroid_node=1, population=100.0,
                     jobs=10.0),
             feature(square(0.008, 0.008), id=2, centroid_node=3, population=20.0, jobs=80.0)]
    return {"format": "geojson", "name": name,
            "links": {"type": "FeatureCollection", "features": links},
            "zones": {"type": "FeatureCollection", "features": zones}}


def is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = json.loads(response.text)
    assert body["status"] == status
    return body
