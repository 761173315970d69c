"""GeoPackage / Shapefile layers: each mapping key applies to its own layer, and a bad zone is
named by its own index even when zones drawn as points come before it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from adapters.gis.gpkg import write_geopackage
from adapters.gis.problems import ImportRejected
from adapters.gis.tables import Table, network_tables
from api.imports.layers import read_layers
from domain.values import Network, Zone
from tests.integration.gis import files
from tests.unit.test_domain import tiny_network


def renamed(table: Table, old: str, new: str) -> Table:
    columns = {new if name == old else name: values for name, values in table.columns.items()}
    return replace(table, columns=columns)


def gpkg(path: Path, network: Network, links_id: str = "link_id",
         zones_id: str = "zone_id") -> Path:
    nodes, links, zones, *demand = network_tables(network)
    write_geopackage(path, [nodes, renamed(links, "link_id", links_id),
                            renamed(zones, "zone_id", zones_id), *demand])
    return path


def test_a_mapped_link_id_leaves_the_zone_ids_alone(tmp_path: Path) -> None:
    network = files.tiny_with_polygons()
    path = gpkg(tmp_path / "n.gpkg", network, links_id="LINK_NO")
    read = read_layers(path, {"id": "LINK_NO"})
    assert [k.id for k in read.links] == [k.id for k in network.links]
    assert [z.id for z in read.zones] == [z.id for z in network.zones]


def test_prefixed_keys_name_their_layer(tmp_path: Path) -> None:
    network = files.tiny_with_polygons()
    path = gpkg(tmp_path / "n.gpkg", network, links_id="LINK_NO", zones_id="TAZ")
    read = read_layers(path, {"links.id": "LINK_NO", "zones.id": "TAZ"})
    assert ([k.id for k in read.links], [z.id for z in read.zones]) == (
        [k.id for k in network.links], [z.id for z in network.zones])
    # A bare `id` with the zones' own key: the bare one is the links'.
    read = read_layers(path, {"id": "LINK_NO", "zones.id": "TAZ"})
    assert [z.id for z in read.zones] == [z.id for z in network.zones]


def test_a_bare_id_still_reads_zones_without_a_zone_id_field(tmp_path: Path) -> None:
    """Both layers keyed by the same field: the mapping that always worked keeps working."""
    network = files.tiny_with_polygons()
    path = gpkg(tmp_path / "n.gpkg", network, links_id="ID", zones_id="ID")
    read = read_layers(path, {"id": "ID"})
    assert ([k.id for k in read.links], [z.id for z in read.zones]) == (
        [k.id for k in network.links], [z.id for z in network.zones])


def test_a_zone_mapping_does_not_reach_the_links(tmp_path: Path) -> None:
    network = files.tiny_with_polygons()
    nodes, links, zones = network_tables(network)[:3]
    zones = renamed(zones, "population", "POP")
    links.columns["POP"] = [-1.0] * len(links)  # a links column of that name is not read
    write_geopackage(tmp_path / "n.gpkg", [nodes, links, zones])
    read = read_layers(tmp_path / "n.gpkg", {"population": "POP"})
    assert [z.population for z in read.zones] == [z.population for z in network.zones]


def test_a_bad_zone_after_point_zones_is_named_by_its_own_index(tmp_path: Path) -> None:
    network = tiny_network()
    assert all(not z.polygon for z in network.zones)  # exported as points
    bad = Zone(9, 99, 1.0, 1.0, (files.SQUARE,))
    path = gpkg(tmp_path / "n.gpkg", replace(network, zones=(*network.zones, bad)))
    with pytest.raises(ImportRejected) as rejected:
        read_layers(path)
    assert [str(p) for p in rejected.value.features] == [
        f"zones[{len(network.zones)}]: zone 9: unknown centroid node 99"]


def test_sioux_falls_round_trips_through_a_geopackage(tmp_path: Path) -> None:
    from api.tntp_import import network_from_tntp_folder

    network = network_from_tntp_folder(str(files.NETWORKS / "SiouxFalls"))
    read = read_layers(gpkg(tmp_path / "sf.gpkg", network))
    assert read == network
