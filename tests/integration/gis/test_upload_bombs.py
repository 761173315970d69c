"""A small upload that expands to gigabytes is refused within the upload bounds, over HTTP,
with nothing stored, and the API serves on (decision 0710).

Each bomb would take gigabytes in the API's own process (measured in the decision: a 351 kB
PBF took 1.7 GB, a 6.6 MB Shapefile zip more than 7 GB); here the readers run in a child
bounded to 512 MB, so the refusal names that bound."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.gis.problems import ImportRejected
from api.imports.files import ImportOptions, read_network
from infra.http import build_api
from infra.settings import ApiSettings
from infra.wiring import Container
from tests.integration.api.conftest import Api, is_problem
from tests.integration.conftest import container, stored_events  # noqa: F401
from tests.integration.gis import bombs, files

MEMORY_MB = 512


@pytest.fixture()
def bounded_api(container: Container) -> Iterator[Api]:  # noqa: F811
    settings = ApiSettings(read_wait_s=0.2, rate_per_second=1000, rate_burst=1000,
                           upload_memory_mb=MEMORY_MB, upload_timeout_s=120)
    with TestClient(build_api(container, settings), base_url="http://acme.cartolog.example",
                    raise_server_exceptions=False) as client:
        yield Api(container, client)


def upload(api: Api, path: Path) -> Any:
    with path.open("rb") as handle:
        return api.client.post("/v1/datasets", headers=api.headers("acme", "editor"),
                               files={"file": (path.name, handle)}, data={"name": path.name})


BOMBS: dict[str, Callable[[Path], Path]] = {
    # 5 MB: link.csv inflates to 1.2 GB, its headers declaring 100 bytes
    "GMNS zip lying about its size": lambda t: bombs.gmns_zip(t / "n.zip", 1200, lie=True),
    # 0.35 MB: 120 million nodes, a node location index of 960 MB
    "OSM PBF of 120 million nodes": lambda t: bombs.osm_pbf(t / "city.osm.pbf", 12),
    # 6.6 MB: ten million blank features
    "Shapefile zip of ten million features": lambda t: bombs.shapefile_zip(t / "s.zip",
                                                                           10_000_000),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_a_bomb_is_refused_within_the_memory_bound_and_the_api_serves_on(
        bomb: str, bounded_api: Api, container: Container, tmp_path: Path) -> None:  # noqa: F811
    path = BOMBS[bomb](tmp_path)
    assert path.stat().st_size < 8 * 2**20
    before = stored_events(container)
    body = is_problem(upload(bounded_api, path), 422)
    assert body["problems"] == [f"file: reading the uploaded file needed more than "
                                f"{MEMORY_MB} MB of memory; it was stopped"], body
    assert stored_events(container) == before
    good = upload(bounded_api, files.gmns_zip(tmp_path / "good.zip"))
    assert good.status_code == 201, good.text
    assert good.json()["link_count"] == 3


def test_a_gmns_zip_declaring_more_than_the_cap_is_refused_before_inflating(
        bounded_api: Api, tmp_path: Path) -> None:
    path = bombs.gmns_zip(tmp_path / "n.zip", 300)
    body = is_problem(upload(bounded_api, path), 422)
    assert body["problems"] == ["file: its CSV files expand to 300 MiB; at most 256 MiB are "
                                "read"]


def test_an_osm_file_with_more_links_than_accepted_is_refused_naming_the_cap() -> None:
    with pytest.raises(ImportRejected) as refused:
        read_network(files.OSM_EXTRACT, ImportOptions(max_features=50))
    [problem] = refused.value.problems
    assert problem.startswith("file: its drivable roads make ")
    assert problem.endswith("links; at most 50 are accepted (CARTOLOG_API_MAX_FEATURES): "
                            "cut a smaller extract")
    _, network = read_network(files.OSM_EXTRACT, ImportOptions())
    assert len(network.links) > 50
