"""Planners' files through the real pipeline: a GMNS round trip simulates identically; a
run's GeoPackage opens in GDAL with its layers, counts, fields and QGIS styles, and its
links layer imports back as the same network; an OSM extract becomes a routable network
whose simulation converges."""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import osmium
import pyogrio
from pyogrio.raw import read
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from adapters.gis.osm_tags import ROAD_CLASSES
from domain.values import Link, Network
from infra.wiring import Container
from tests.e2e.test_api_flow import wait_completed, whole_pipeline
from tests.integration.api.conftest import SIOUX_FALLS, Api, api  # noqa: F401
from tests.integration.conftest import container  # noqa: F401
from tests.integration.gis.files import OSM_EXTRACT


def upload(api: Api, path: Path, **form: str) -> str:  # noqa: F811
    with path.open("rb") as handle:
        response = api.client.post("/v1/datasets", headers=api.headers("acme", "editor"),
                                   files={"file": (path.name, handle)},
                                   data={"name": path.name, **form})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def simulate(api: Api, dataset: str) -> tuple[str, str]:  # noqa: F811
    scenario = api.scenario(dataset=dataset)
    run = api.post(f"/v1/scenarios/{scenario}/simulations",
                   {"model": "builtin", "parameters": {"gap": 1e-4, "reuse": False}})
    assert run.status_code == 202, run.text
    wait_completed(api, run.json()["id"])
    return scenario, str(run.json()["id"])


def results(api: Api, run: str) -> tuple[dict[str, float], dict[str, float]]:  # noqa: F811
    links = api.get(f"/v1/simulations/{run}/links", params={"limit": 10_000}).json()
    indicators = api.get(f"/v1/simulations/{run}/indicators").json()["indicators"]
    return ({f["properties"]["link_id"]: f["properties"]["flow"] for f in links["features"]},
            {i["name"]: i["value"] for i in indicators})


def download(api: Api, path: str, target: Path, **params: str) -> Path:  # noqa: F811
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    target.write_bytes(response.content)
    return target


def network_of(container: Container, dataset: str) -> Network:  # noqa: F811
    record = container.app.get_dataset("acme", UUID(dataset))
    return container.app.load_network("acme", record.network_sha256)


def drawn(network: Network) -> Network:
    """Links without a shape drawn as the straight line between their nodes, as exported."""
    where = {n.id: (n.x, n.y) for n in network.nodes}

    def line(link: Link) -> Link:
        shape = link.geometry or (where[link.from_node], where[link.to_node])
        return replace(link, geometry=tuple(shape))
    return replace(network, links=tuple(line(k) for k in network.links))


def test_gmns_round_trip_and_run_geopackage(api: Api, container: Container,  # noqa: F811
                                             tmp_path: Path) -> None:
    tntp = {kind: (SIOUX_FALLS / f"SiouxFalls_{kind}.tntp").read_text()
            for kind in ("net", "trips", "node")}
    with whole_pipeline(container):
        original = api.post("/v1/datasets", {"format": "tntp", "name": "SF", **tntp}).json()
        scenario, run = simulate(api, original["id"])
        gmns = download(api, f"/v1/scenarios/{scenario}/export", tmp_path / "sf.zip",
                        format="gmns", version="1")
        copy = upload(api, gmns)
        _, run_copy = simulate(api, copy)
        flows, indicators = results(api, run)
        assert network_of(container, copy).sha256() == original["network_sha256"]
        assert results(api, run_copy) == (flows, indicators) and len(flows) == 76
        package = download(api, f"/v1/simulations/{run}/export", tmp_path / "run.gpkg",
                           format="gpkg")
        check_geopackage(package, flows, indicators)
        reimported = network_of(container, upload(api, package))
        assert reimported == drawn(network_of(container, original["id"]))
        check_csv(api, run)


def check_geopackage(path: Path, flows: dict[str, float], indicators: dict[str, Any]) -> None:
    layers = {name: kind for name, kind in pyogrio.list_layers(path)}
    assert layers == {"nodes": "Point", "links": "LineString", "zones": "Point",
                      "indicators": None, "demand": None, "layer_styles": None}
    meta, _, _, columns = read(path, layer="links")
    fields = dict(zip(meta["fields"], columns, strict=True))
    assert meta["crs"] == "EPSG:4326" and len(fields["link_id"]) == 76
    assert {"capacity", "free_flow_time", "flow", "volume_capacity", "congested_time"} <= set(
        fields)
    assert dict(zip(fields["link_id"], fields["flow"], strict=True)) == flows
    zones = read(path, layer="zones")[3]
    assert len(zones[0]) == 24
    names, values = read(path, layer="indicators")[3][:2]
    assert dict(zip(names, values, strict=True)) == indicators
    styles = dict(zip(*read(path, layer="layer_styles", columns=["f_table_name", "styleQML"])[
        3], strict=True))
    assert set(styles) == {"links", "zones"} and 'attr="volume_capacity"' in styles["links"]


def check_csv(api: Api, run: str) -> None:  # noqa: F811
    response = api.get(f"/v1/simulations/{run}/export", params={"format": "csv"})
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["demand.csv", "indicators.csv", "links.csv",
                                          "nodes.csv", "zones.csv"]
    header = archive.read("links.csv").decode().splitlines()[0]
    assert header.startswith("link_id,") and header.endswith(",flow,volume_capacity,"
                                                             "congested_time,wkt")
    assert len(archive.read("links.csv").decode().splitlines()) == 77
    indicators = archive.read("indicators.csv").decode().splitlines()
    assert indicators[0] == "name,value,unit" and len(indicators) > 5


class WayTags(osmium.SimpleHandler):
    """The tags of every way of an extract, read independently of the importer."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, dict[str, str]] = {}

    def way(self, way: osmium.osm.Way) -> None:
        self.tags[str(way.id)] = {tag.k: tag.v for tag in way.tags}


def test_osm_extract_becomes_a_routable_network_that_converges(
        api: Api, container: Container) -> None:  # noqa: F811
    handler = WayTags()
    handler.apply_file(str(OSM_EXTRACT))
    with whole_pipeline(container):
        dataset = upload(api, OSM_EXTRACT, hexagon_km="0.5")
        network = network_of(container, dataset)
        _, run = simulate(api, dataset)
        indicators = results(api, run)[1]
    assert indicators["converged"] == 1.0 and indicators["total_trips"] > 0
    assert len(network.nodes) > 200 and len(network.zones) > 10 and strongly_connected(network)
    check_directions(network, handler.tags)
    check_defaults(network, handler.tags)


def strongly_connected(network: Network) -> bool:
    index = {n.id: i for i, n in enumerate(network.nodes)}
    rows = [index[k.from_node] for k in network.links]
    cols = [index[k.to_node] for k in network.links]
    graph = coo_matrix(([1.0] * len(rows), (rows, cols)), shape=(len(index), len(index)))
    return int(connected_components(graph, directed=True, connection="strong")[0]) == 1


def by_way(network: Network) -> dict[str, set[str]]:
    """way id -> directions ("f", "b") of its links."""
    found: dict[str, set[str]] = {}
    for link in network.links:
        way, _, suffix = link.id.split("-")
        found.setdefault(way, set()).add(suffix)
    return found


def check_directions(network: Network, tags: dict[str, dict[str, str]]) -> None:
    ways = by_way(network)
    oneway = [w for w in ways if tags[w].get("oneway") == "yes"
              or tags[w]["highway"] == "motorway"]
    two_way = [w for w in ways if "oneway" not in tags[w]
               and tags[w]["highway"] == "residential"]
    assert len(oneway) >= 10 and len(two_way) >= 20
    assert all(ways[w] == {"f"} for w in oneway)
    assert all(ways[w] == {"f", "b"} for w in two_way)


def check_defaults(network: Network, tags: dict[str, dict[str, str]]) -> None:
    plain = [k for k in network.links
             if not {"lanes", "maxspeed"} & set(tags[k.id.split("-")[0]])]
    assert len(plain) > 100
    for link in plain:
        road = ROAD_CLASSES[tags[link.id.split("-")[0]]["highway"]]
        assert link.lanes == road.lanes
        assert link.capacity == road.capacity_per_lane * road.lanes
        assert math.isclose(link.free_flow_time, 60.0 * link.length / road.speed_kmh)
