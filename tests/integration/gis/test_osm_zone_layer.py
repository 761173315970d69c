"""An OSM upload with the planner's zone polygons: zones come from the layer, each attached
to a node inside its own polygon; a broken polygon is refused with its reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from pyogrio.raw import write

from adapters.gis.osm import OsmOptions, read_osm
from adapters.gis.problems import ImportRejected
from api.imports.files import ImportOptions, read_network
from tests.integration.api.conftest import Api, api  # noqa: F401
from tests.integration.conftest import container  # noqa: F401
from tests.integration.gis.files import OSM_EXTRACT

Box = tuple[float, float, float, float]


def halves() -> tuple[Box, Box]:
    network = read_osm(OSM_EXTRACT, OsmOptions())
    xs = [n.x for n in network.nodes]
    ys = [n.y for n in network.nodes]
    middle = (min(xs) + max(xs)) / 2
    return ((min(xs), min(ys), middle, max(ys)), (middle, min(ys), max(xs), max(ys)))


def zones_gpkg(path: Path, shapes: list[shapely.Geometry]) -> Path:
    write(str(path), shapely.to_wkb(np.array(shapes, dtype=object)),
          [np.array([10, 20][: len(shapes)]), np.array([500.0, 700.0][: len(shapes)]),
           np.array([50.0, 70.0][: len(shapes)])],
          fields=["zone_id", "population", "jobs"], layer="zones", driver="GPKG",
          geometry_type="Polygon", crs="EPSG:4326")
    return path


def test_zones_come_from_the_polygon_layer(tmp_path: Path) -> None:
    west, east = halves()
    path = zones_gpkg(tmp_path / "zones.gpkg", [shapely.box(*west), shapely.box(*east)])
    _, network = read_network(OSM_EXTRACT, ImportOptions(zones_file=path))
    where = {n.id: n for n in network.nodes}
    assert [(z.id, z.population, z.jobs) for z in network.zones] == [(10, 500.0, 50.0),
                                                                   (20, 700.0, 70.0)]
    for zone, box in zip(network.zones, (west, east), strict=True):
        centre = where[zone.centroid_node]
        assert shapely.box(*box).buffer(1e-9).contains(shapely.Point(centre.x, centre.y))
    assert network.problems() == []


def test_a_self_intersecting_zone_is_refused(tmp_path: Path) -> None:
    x1, y1, x2, y2 = halves()[0]
    bowtie = shapely.Polygon([(x1, y1), (x2, y2), (x2, y1), (x1, y2), (x1, y1)])
    path = zones_gpkg(tmp_path / "zones.gpkg", [bowtie])
    with pytest.raises(ImportRejected) as rejected:
        read_network(OSM_EXTRACT, ImportOptions(zones_file=path))
    assert len(rejected.value.problems) == 1
    assert rejected.value.problems[0].startswith("zones[0]: invalid polygon: Self-intersection")


def test_upload_with_a_zone_layer(api: Api, tmp_path: Path) -> None:  # noqa: F811
    path = zones_gpkg(tmp_path / "zones.gpkg", [shapely.box(*b) for b in halves()])
    with OSM_EXTRACT.open("rb") as network, path.open("rb") as zones:
        response = api.client.post(
            "/v1/datasets", headers=api.headers("acme", "editor"),
            files={"file": (OSM_EXTRACT.name, network), "zones_file": ("zones.gpkg", zones)},
            data={"name": "OSM with zones"})
    assert response.status_code == 201, response.text
    assert response.json()["zone_count"] == 2 and response.json()["source_format"] == "osm"
