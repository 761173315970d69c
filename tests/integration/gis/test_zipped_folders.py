"""A Shapefile zip made by zipping a folder (`city.zip` holding `city/links.shp`) imports like
one with the files at its top; Shapefiles in two folders are refused by name, not guessed."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyogrio.raw import write

from adapters.gis.problems import ImportRejected
from api.imports.files import ImportOptions, read_network
from tests.integration.gis.files import OSM_EXTRACT, shapefile_zip


def test_a_zipped_folder_imports_like_a_flat_zip(tmp_path: Path) -> None:
    _, flat = read_network(shapefile_zip(tmp_path / "flat.zip"), ImportOptions())
    folder = shapefile_zip(tmp_path / "city.zip", inner="city/")
    with zipfile.ZipFile(folder, "a") as archive:  # what macOS's Finder adds
        archive.writestr("__MACOSX/city/._links.shp", b"\0\5\26\7")
    fmt, nested = read_network(folder, ImportOptions())
    assert fmt == "shapefile"
    assert nested == flat and len(nested.links) > 0 and len(nested.zones) > 0


def test_shapefiles_in_two_folders_are_refused_by_name(tmp_path: Path) -> None:
    path = shapefile_zip(tmp_path / "two.zip", inner="a/")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("b/links.shp", b"")
    with pytest.raises(ImportRejected) as rejected:
        read_network(path, ImportOptions())
    assert rejected.value.problems == [
        "file: the zip holds Shapefiles in a/, b/: put the links and zones layers in one "
        "folder (or at the top of the zip)"]


def test_a_zone_layer_reads_through_the_mapping_and_its_prefixes(tmp_path: Path) -> None:
    """An OSM network's zone polygons with the planner's own field names: a bare `id` is the
    zones' id (there is no links layer beside it) and `zones.KEY` names the layer."""
    from adapters.gis.osm import OsmOptions, read_osm

    network = read_osm(OSM_EXTRACT, OsmOptions())
    xs = [n.x for n in network.nodes]
    ys = [n.y for n in network.nodes]
    box = shapely.box(min(xs), min(ys), max(xs), max(ys))
    path = tmp_path / "zones.gpkg"
    write(str(path), shapely.to_wkb(np.array([box], dtype=object)),
          [np.array([7]), np.array([123.0]), np.array([45.0])],
          fields=["ZONE", "POP", "EMP"], layer="zones", driver="GPKG",
          geometry_type="Polygon", crs="EPSG:4326")
    mapping = {"id": "ZONE", "zones.population": "POP", "jobs": "EMP"}
    _, read = read_network(OSM_EXTRACT, ImportOptions(zones_file=path, mapping=mapping))
    assert [(z.id, z.population, z.jobs) for z in read.zones] == [(7, 123.0, 45.0)]
