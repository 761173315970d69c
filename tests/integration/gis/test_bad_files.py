"""Every broken upload is refused with its reasons, over HTTP, and nothing is stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.wiring import Container
from tests.integration.api.conftest import Api, api, is_problem  # noqa: F401
from tests.integration.conftest import container, stored_events  # noqa: F401
from tests.integration.gis import files


def upload(api: Api, path: Path, **form: str) -> Any:  # noqa: F811
    with path.open("rb") as handle:
        return api.client.post("/v1/datasets", headers=api.headers("acme", "editor"),
                               files={"file": (path.name, handle)},
                               data={"name": path.name, **form})


def truncated_zip(tmp: Path) -> Path:
    return files.truncated(files.gmns_zip(tmp / "whole.zip"), tmp / "network.zip")


def truncated_pbf(tmp: Path) -> Path:
    return files.truncated(files.OSM_EXTRACT, tmp / "city.osm.pbf")


def missing_length(tmp: Path) -> Path:
    return files.gmns_zip(tmp / "network.zip", drop_field="length")


def missing_capacity(tmp: Path) -> Path:
    return files.gpkg(tmp / "network.gpkg")


def self_intersecting(tmp: Path) -> Path:
    return files.gpkg(tmp / "network.gpkg", files.tiny_with_polygons(files.BOWTIE))


CASES: dict[str, tuple[Callable[[Path], Path], dict[str, str], str]] = {
    "truncated zip": (truncated_zip, {}, "not a readable zip"),
    "truncated OSM file": (truncated_pbf, {}, "not a readable OSM file"),
    "wrong CRS": (lambda t: files.gpkg_in_web_mercator(t / "mercator.gpkg"), {},
                  "CRS is EPSG:3857"),
    "GMNS link without length": (missing_length, {}, "missing field(s): length"),
    "layer without the mapped capacity": (missing_capacity,
                                          {"mapping": '{"capacity": "cap"}'},
                                          "missing required property 'capacity'"),
    "self-intersecting zones": (self_intersecting, {}, "Self-intersection"),
    "OSM file without drivable roads": (lambda t: files.osm_without_roads(t / "paths.osm.pbf"),
                                        {}, "no way with a drivable highway tag"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_file_is_refused_with_its_reason_and_nothing_is_stored(
        case: str, api: Api, container: Container, tmp_path: Path) -> None:  # noqa: F811
    make, form, reason = CASES[case]
    before = stored_events(container)
    body = is_problem(upload(api, make(tmp_path), **form), 422)
    assert any(reason in problem for problem in body["problems"]), body
    assert stored_events(container) == before


def test_each_bad_feature_is_listed(api: Api, tmp_path: Path) -> None:  # noqa: F811
    body = is_problem(upload(api, files.gpkg(tmp_path / "n.gpkg",
                                             files.tiny_with_polygons(files.BOWTIE))), 422)
    assert [p for p in body["problems"] if "Self-intersection" in p] == [
        p for p in body["problems"] if p.startswith(("zones[0]", "zones[1]"))]
    assert len(body["problems"]) == 2


def test_good_files_import(api: Api, tmp_path: Path) -> None:  # noqa: F811
    for path in (files.gmns_zip(tmp_path / "network.zip"), files.gpkg(tmp_path / "n.gpkg"),
                 files.shapefile_zip(tmp_path / "shapes.zip")):
        response = upload(api, path)
        assert response.status_code == 201, response.text
        assert response.json()["link_count"] == 3 and response.json()["zone_count"] == 2
    assert api.post("/v1/datasets", {"format": "geojson"}).status_code == 422
