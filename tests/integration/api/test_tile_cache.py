"""Kept tiles never outlive their content: an edit makes the scenario's tiles new."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from domain.edits import CloseLink
from infra.http import ApiSettings, build_api
from infra.wiring import Container
from tests.integration.api.conftest import Api, tiny_geojson
from tests.integration.conftest import OPERATOR, container  # noqa: F401
from tests.integration.projections.conftest import relay_and_projector, wait_caught_up


@pytest.fixture()
def api(container: Container) -> Iterator[Api]:  # noqa: F811
    settings = ApiSettings(read_wait_s=30, rate_per_second=1000, rate_burst=1000)
    with relay_and_projector(container, ["read_model"]), TestClient(
            build_api(container, settings), base_url="http://acme.cartolog.example",
            raise_server_exceptions=False) as client:
        yield Api(container, client)


def test_an_edit_gives_new_scenario_tiles_and_repeats_come_from_the_cache(api: Api) -> None:
    dataset = api.post("/v1/datasets", tiny_geojson()).json()["id"]
    scenario = api.post("/v1/scenarios", {"name": "s", "dataset_id": dataset}).json()["id"]
    wait_caught_up(api.container, ["read_model"])
    path = f"/v1/tiles/links/10/512/511.mvt?scenario={scenario}"  # lon, lat 0..0.35
    first = api.get(path)
    assert first.status_code == 200 and len(first.content) > 50
    services = api.client.app.state.services  # type: ignore[attr-defined]
    hits = services.tiles.hits
    again = api.get(path)
    assert again.content == first.content and services.tiles.hits == hits + 1
    api.container.app.edit_scenario("acme", uuid.UUID(scenario), 1, [CloseLink("a")], OPERATOR)
    wait_caught_up(api.container, ["read_model"])
    edited = api.get(path)
    assert edited.status_code == 200 and edited.content != first.content
    assert edited.headers["etag"] != first.headers["etag"]
    # What PostGIS builds now, without any cache, is what was served.
    fresh = TestClient(build_api(api.container, ApiSettings(tile_cache_mb=0)),
                       base_url="http://acme.cartolog.example")
    assert fresh.get(path, headers=api.headers("acme", "viewer")).content == edited.content
    assert api.get(path, tenant="rival").status_code == 404
