"""Layers as plain columns: a domain Network (and a run's results) laid out as the tables
every export format writes, in one column order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from domain.values import Link, Network, Zone

LINK_COLUMNS = ("link_id", "from_node", "to_node", "capacity", "length", "free_flow_time",
                "b", "power", "toll", "link_type", "lanes")
ZONE_COLUMNS = ("zone_id", "centroid_node", "population", "jobs")


@dataclass
class Table:
    """One layer: column name -> values, and a geometry per row (or none for a table)."""

    name: str
    columns: dict[str, list[Any]]
    geometry_type: str | None = None
    geometries: list[BaseGeometry | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))


def network_tables(network: Network) -> list[Table]:
    """Nodes, links and zones of a network, and its OD matrix when it has one."""
    tables = [nodes_table(network), links_table(network.links, network),
              zones_table(network.zones, network)]
    if network.od_matrix:
        tables.append(Table("demand", {"o_zone_id": [o for o, _, _ in network.od_matrix],
                                       "d_zone_id": [d for _, d, _ in network.od_matrix],
                                       "volume": [t for _, _, t in network.od_matrix]}))
    return tables


def nodes_table(network: Network) -> Table:
    """Nodes as points; `zone_centroid` marks nodes below first_thru_node."""
    return Table("nodes", {
        "node_id": [n.id for n in network.nodes],
        "zone_centroid": [n.id < network.first_thru_node for n in network.nodes],
    }, "Point", [shapely.Point(n.x, n.y) for n in network.nodes])


def links_table(links: Sequence[Link], network: Network) -> Table:
    """Links as lines (straight between their nodes when they carry no shape)."""
    where = {n.id: (n.x, n.y) for n in network.nodes}
    columns: dict[str, list[Any]] = {name: [] for name in LINK_COLUMNS}
    shapes: list[BaseGeometry | None] = []
    for link in links:
        for name in LINK_COLUMNS:
            columns[name].append(link.id if name == "link_id" else getattr(link, name))
        # A line of one position (an edit recorded before the rule refused it) is drawn
        # between its nodes, as the read model draws it.
        points = link.geometry if len(link.geometry) >= 2 else (where[link.from_node],
                                                                where[link.to_node])
        shapes.append(shapely.LineString(points))
    return Table("links", columns, "LineString", shapes)


def zones_table(zones: Sequence[Zone], network: Network) -> Table:
    """Zones as polygons (a point at the centroid node when a zone has no polygon)."""
    where = {n.id: (n.x, n.y) for n in network.nodes}
    columns: dict[str, list[Any]] = {name: [] for name in ZONE_COLUMNS}
    shapes: list[BaseGeometry | None] = []
    for zone in zones:
        columns["zone_id"].append(zone.id)
        columns["centroid_node"].append(zone.centroid_node)
        columns["population"].append(zone.population)
        columns["jobs"].append(zone.jobs)
        shapes.append(_zone_shape(zone, where))
    kinds = {shape.geom_type for shape in shapes if shape is not None}
    kind = kinds.pop() if len(kinds) == 1 else "Unknown"
    return Table("zones", columns, kind, shapes)


def _zone_shape(zone: Zone, where: Mapping[int, tuple[float, float]]) -> BaseGeometry | None:
    if zone.polygon:
        return shapely.MultiPolygon([shapely.Polygon(zone.polygon[0], zone.polygon[1:])])
    centre = where.get(zone.centroid_node)
    return shapely.Point(*centre) if centre else None


def with_results(table: Table, key: str, results: Mapping[Any, Mapping[str, Any]],
                 names: Sequence[str]) -> Table:
    """`table` with result columns joined on `key` (None where a row has no result)."""
    columns = dict(table.columns)
    for name in names:
        columns[name] = [results.get(k, {}).get(name) for k in table.columns[key]]
    return Table(table.name, columns, table.geometry_type, table.geometries)
