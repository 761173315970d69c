"""Files a planner might upload, good and broken, made on the spot from the test networks."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import osmium
import shapely
from pyogrio.raw import write

from adapters.gis.gmns import write_gmns
from adapters.gis.gpkg import write_geopackage
from adapters.gis.tables import network_tables
from domain.values import Network, Zone
from tests.unit.test_domain import tiny_network

DATA = Path(__file__).resolve().parents[2] / "data"
OSM_EXTRACT = DATA / "osm" / "test.osm.pbf"
NETWORKS = DATA / "networks"
SQUARE = ((0.0, 0.0), (0.004, 0.0), (0.004, 0.004), (0.0, 0.004), (0.0, 0.0))
BOWTIE = ((0.0, 0.0), (0.004, 0.004), (0.004, 0.0), (0.0, 0.004), (0.0, 0.0))


def tiny_with_polygons(ring: tuple[tuple[float, float], ...] = SQUARE) -> Network:
    network = tiny_network()
    zones = tuple(replace(z, polygon=(ring,)) for z in network.zones)
    return replace(network, zones=zones)


def gmns_zip(path: Path, network: Network | None = None, drop_field: str | None = None
             ) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        write_gmns(network or tiny_network(), archive)
    if drop_field is None:
        return path
    with zipfile.ZipFile(path) as archive:
        files = {n: archive.read(n).decode() for n in archive.namelist()}
    files["link.csv"] = _without_column(files["link.csv"], drop_field)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def _without_column(csv_text: str, field: str) -> str:
    rows = [line.split(",") for line in csv_text.splitlines()]
    drop = rows[0].index(field)
    return "\n".join(",".join(v for i, v in enumerate(r) if i != drop) for r in rows) + "\n"


def truncated(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


def gpkg(path: Path, network: Network | None = None) -> Path:
    write_geopackage(path, network_tables(network or tiny_with_polygons()))
    return path


def gpkg_in_web_mercator(path: Path) -> Path:
    links = network_tables(tiny_network())[1]
    shapes = shapely.to_wkb(np.array(links.geometries, dtype=object))
    write(str(path), shapes, [np.array(v, dtype=object if isinstance(v[0], str) else None)
                              for v in links.columns.values()],
          fields=list(links.columns), layer="links", driver="GPKG",
          geometry_type="LineString", crs="EPSG:3857")
    return path


def osm_without_roads(path: Path) -> Path:
    writer = osmium.SimpleWriter(str(path))
    for node_id, lon in ((1, 24.90), (2, 24.91), (3, 24.92)):
        writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, 60.1), version=1))
    writer.add_way(osmium.osm.mutable.Way(id=10, nodes=[1, 2], version=1,
                                          tags={"highway": "footway"}))
    writer.add_way(osmium.osm.mutable.Way(id=11, nodes=[2, 3], version=1,
                                          tags={"highway": "cycleway"}))
    writer.close()
    return path


def zone(zone_id: int, ring: tuple[tuple[float, float], ...]) -> Zone:
    return Zone(zone_id, 1, 1.0, 1.0, (ring,))


def shapefile_zip(path: Path, network: Network | None = None, inner: str = "") -> Path:
    """links.shp and zones.shp (names cut to 10 characters by the format) in one zip, at
    its top or in the folder `inner` ('city/')."""
    folder = path.parent / f"shapefiles-{path.stem}"
    folder.mkdir()
    for table in network_tables(network or tiny_with_polygons())[1:3]:
        shapes = shapely.to_wkb(np.array(table.geometries, dtype=object))
        write(str(folder / f"{table.name}.shp"), shapes,
              [np.array(v, dtype=object if isinstance(v[0], str) else None)
               for v in table.columns.values()], fields=list(table.columns),
              driver="ESRI Shapefile", geometry_type=table.geometry_type, crs="EPSG:4326")
    with zipfile.ZipFile(path, "w") as archive:
        for member in sorted(folder.iterdir()):
            archive.write(member, f"{inner}{member.name}")
    return path


def sioux_falls_corner(path: Path, nodes: int = 8) -> tuple[Path, int]:
    """A GMNS zip of Sioux Falls' first `nodes` nodes (same place on the map); its links."""
    from api.tntp_import import network_from_tntp_folder

    full = network_from_tntp_folder(str(NETWORKS / "SiouxFalls"))
    keep = set(range(1, nodes + 1))
    links = tuple(k for k in full.links if k.from_node in keep and k.to_node in keep)
    corner = replace(full, nodes=tuple(n for n in full.nodes if n.id in keep), links=links,
                     zones=tuple(z for z in full.zones if z.centroid_node in keep),
                     od_matrix=tuple(t for t in full.od_matrix if t[0] in keep and t[1] in keep))
    return gmns_zip(path, corner), len(links)
