"""Every broken upload is refused with its reasons, over HTTP, and nothing is stored."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from infra.wiring import Container
from tests.integration.api.conftest import Api, api, is_problem  # noqa: F401
from tests.integration.conftest import container, stored_events  # noqa: F401
from tests.integration.gis import files
from tests.unit.test_gmns_input import gmns


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
    "CRS contradicted": (lambda t: files.gpkg_in_web_mercator(t / "mercator.gpkg"),
                         {"crs": "EPSG:4326"}, "the layer is in EPSG:3857, not the crs given"),
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


def gmns_upload(tmp: Path, files_: dict[str, str], name: str = "network.zip") -> Path:
    path = tmp / name
    with zipfile.ZipFile(path, "w") as archive:
        for kind, content in files_.items():
            archive.writestr(f"{kind}.csv", content)
    return path


GMNS_CASES: dict[str, tuple[dict[str, str], str]] = {
    "decimal node reference": ({"to_node_id": "1.5"},
                               "link.csv[0]: to_node_id '1.5' is not a whole number"),
    "infinite speed": ({"free_speed": "inf"},
                       "link.csv[0]: free_speed must be a finite number, not inf"),
    "unknown text facility type": ({"facility_type": "abc"}, "link.csv[0]: facility_type "
                                                             "'abc' is neither a link type"),
    "projected coordinates": ({"geometry": "LINESTRING (500000 0, 500100 0)"},
                              "link.csv[0]: the line does not join its nodes"),
    "negative free-flow time": ({"vdf_fftt": "-2"}, "link.csv[0]: vdf_fftt must not be negative"),
    "negative total capacity": ({"link_capacity": "-1"},
                                "link.csv[0]: link_capacity must be positive"),
    "underscore in a number": ({"length": "1_5"}, "link.csv[0]: length '1_5' is not a plain "
                                                  "decimal number"),
}


@pytest.mark.parametrize("case", sorted(GMNS_CASES))
def test_a_gmns_value_a_reader_misread_is_a_422_storing_nothing(
        case: str, api: Api, container: Container, tmp_path: Path) -> None:  # noqa: F811
    change, reason = GMNS_CASES[case]
    before = stored_events(container)
    body = is_problem(upload(api, gmns_upload(tmp_path, gmns(change))), 422)
    assert any(p.startswith(reason) for p in body["problems"]), body
    assert stored_events(container) == before


def test_an_undirected_gmns_link_is_stored_as_both_directions(
        api: Api, container: Container, tmp_path: Path) -> None:  # noqa: F811
    response = upload(api, gmns_upload(tmp_path, gmns({"directed": "0"})))
    assert response.status_code == 201, response.text
    dataset = container.app.get_dataset("acme", UUID(response.json()["id"]))
    network = container.app.load_network("acme", dataset.network_sha256)
    assert sorted((k.id, k.from_node, k.to_node) for k in network.links) == [
        ("a", 1, 2), ("a-reverse", 2, 1)]


def test_the_form_first_thru_node_overrides_the_gmns_config_and_is_bounded(
        api: Api, container: Container, tmp_path: Path) -> None:  # noqa: F811
    path = gmns_upload(tmp_path, gmns(config="dataset_name,first_thru_node\nx,2\n"))
    for form, expected in (({}, 2), ({"first_thru_node": "3"}, 3)):
        response = upload(api, path, **form)
        assert response.status_code == 201, response.text
        dataset = container.app.get_dataset("acme", UUID(response.json()["id"]))
        assert container.app.load_network("acme", dataset.network_sha256).first_thru_node \
            == expected
    before = stored_events(container)
    for value in ("0", str(2**31), "1.5"):
        is_problem(upload(api, path, first_thru_node=value), 422)
    osm = is_problem(upload(api, files.OSM_EXTRACT, first_thru_node="4"), 422)
    assert osm["problems"] == [
        "first_thru_node: first_thru_node cannot be set for an OSM file: every node of an OSM "
        "network is a road node (first_thru_node 1), zones are attached to them"]
    assert stored_events(container) == before


def test_a_deeply_nested_mapping_is_a_422_not_a_500(
        api: Api, container: Container, tmp_path: Path) -> None:  # noqa: F811
    before = stored_events(container)
    path = files.gpkg(tmp_path / "n.gpkg")
    nested = is_problem(upload(api, path, mapping="[" * 5000 + "]" * 5000), 422)
    assert nested["problems"] == [
        'mapping: nested too deeply; expected {"target": "source field", ...}']
    long = is_problem(upload(api, path, mapping="[" * 50_000 + "]" * 50_000), 422)
    assert long["problems"] == ["mapping: 100000 characters; at most 10000 are accepted"]
    assert stored_events(container) == before


def test_a_mapping_key_no_layer_reads_is_refused_not_ignored(
        api: Api, container: Container, tmp_path: Path) -> None:  # noqa: F811
    """A typo ('capcity') used to be dropped, leaving the default field name in place."""
    before = stored_events(container)
    path = files.gpkg(tmp_path / "n.gpkg")
    refused = is_problem(upload(api, path, mapping='{"capcity": "CAP", "links.jobs": "J", '
                                                 '"zones.capacity": "C", "lanes": "L"}'), 422)
    assert refused["problems"] == [
        "mapping: 'capcity', 'links.jobs', 'zones.capacity' are not fields Cartolog reads: "
        "links take id, from_node, to_node, capacity, length, free_flow_time, b, power, toll, "
        "lanes, link_type; zones take id, centroid_node, population, jobs (either may be "
        "prefixed 'links.' or 'zones.')"]
    assert stored_events(container) == before
    known = upload(api, path, mapping='{"links.capacity": "capacity", "zones.jobs": "jobs"}')
    assert known.status_code == 201, known.text
