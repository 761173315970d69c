"""GeoJSON import: lines run from their from_node to their to_node, present values are kept or
refused (never replaced by a default), zones in the shapes planners send, and a GeoJSON export
imports back as the same network (decision 0714)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.gis.exports import geojson_document
from api.geojson_import import END_TOLERANCE_M, metres, parse_network
from api.tntp_import import parse_tntp
from domain.values import Link, Network

SIOUX_FALLS = Path(__file__).resolve().parents[2] / "data" / "networks" / "SiouxFalls"
A, B, C = [0.0, 0.0], [0.01, 0.0], [0.01, 0.01]


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def link(coordinates: list[list[float]], identity: str, from_node: int, to_node: int,
         **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": coordinates},
            "properties": {"id": identity, "from_node": from_node, "to_node": to_node,
                           "capacity": 1000.0, "length": 1.0, "free_flow_time": 1.0,
                           **properties}}


def zone(geometry: dict[str, Any], identity: int, centroid: int) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {
        "id": identity, "centroid_node": centroid, "population": 10.0, "jobs": 5.0}}


def ring(x: float, y: float, size: float = 0.002) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def triangle(**extra: Any) -> list[dict[str, Any]]:
    """1 -> 2 -> 3 -> 1, each drawn from its from_node."""
    return [link([A, B], "a", 1, 2, **extra), link([B, C], "b", 2, 3),
            link([C, A], "c", 3, 1)]


def parsed(links: list[dict[str, Any]], zones: list[dict[str, Any]] | None = None,
           demand: Any = None) -> tuple[Network | None, list[str]]:
    network, problems = parse_network(collection(*links), collection(*(zones or [])), 1, 100,
                                      demand)
    return network, [str(p) for p in problems]


def test_a_line_drawn_from_its_to_node_is_turned_round_and_moves_no_node() -> None:
    for position in range(3):  # the reversed line first, in the middle, last
        links = triangle()
        links.insert(position, link([A, C], "back", 3, 1))  # drawn from node 1 to node 3
        network, problems = parsed(links)
        assert problems == [] and network is not None
        assert {n.id: (n.x, n.y) for n in network.nodes} == {1: (0.0, 0.0), 2: (0.01, 0.0),
                                                             3: (0.01, 0.01)}
        back = next(k for k in network.links if k.id == "back")
        assert (back.from_node, back.to_node, back.geometry) == (3, 1, ((0.01, 0.01),
                                                                        (0.0, 0.0)))


def test_a_line_whose_end_is_far_from_its_node_is_refused_with_the_distance() -> None:
    stray = [0.01, 0.0005]  # about 55 m north of node 2
    links = [*triangle(), link([A, B], "a2", 1, 2), link([A, stray], "far", 1, 2)]
    network, problems = parsed(links)
    assert network is None
    gap = metres((0.01, 0.0005), (0.01, 0.0))
    assert 55 < gap < 56
    assert problems == [f"links[4]: the line does not join its nodes: its last position is "
                        f"{gap:.1f} m from its to_node 2 (at most {END_TOLERANCE_M:g} m; "
                        "each node is where most of its links end)"]


def test_ends_within_the_tolerance_are_at_their_node() -> None:
    near = [0.01 + 0.000005, 0.0]  # about 0.56 m east of node 2
    network, problems = parsed([*triangle(), link([A, near], "near", 1, 2)])
    assert problems == [] and network is not None
    assert next(n for n in network.nodes if n.id == 2).x == 0.01


@pytest.mark.parametrize(("properties", "expected"), [
    ({"link_type": 0}, (0, 1.0)),  # link type 0 is valid (docs/api.md), and kept
    ({"link_type": 7, "lanes": 3}, (7, 3.0)),
    ({"link_type": "Primary"}, (3, 1.0)),  # a name gets an OSM import's number (0715)
    ({"link_type": "minor arterial"}, (4, 1.0)),
    ({}, (1, 1.0)),  # absent: the defaults
    ({"link_type": None, "lanes": None}, (1, 1.0)),  # null is absent
])
def test_present_link_type_and_lanes_are_kept(properties: dict[str, Any],
                                              expected: tuple[int, float]) -> None:
    network, problems = parsed(triangle(**properties))
    assert problems == [] and network is not None
    assert (network.links[0].link_type, network.links[0].lanes) == expected


@pytest.mark.parametrize(("properties", "reason"), [
    ({"lanes": 0}, "links[0]: link 'a': lanes must be a finite, positive number"),
    ({"lanes": -2}, "links[0]: link 'a': lanes must be a finite, positive number"),
    ({"link_type": -1}, "links[0]: property 'link_type' must be between 0 and 2147483647"),
    ({"link_type": "0"}, "links[0]: property 'link_type' must be an integer"),
    ({"link_type": "boulevard"}, "links[0]: property 'link_type' 'boulevard' is neither a link "
                                 "type number 0..2147483647 nor a known name: motorway, trunk, "
                                 "primary, secondary, tertiary, unclassified, residential, "
                                 "living_street, service, road, motorway_link, trunk_link, "
                                 "primary_link, secondary_link, tertiary_link, freeway, "
                                 "expressway, principal_arterial, major_arterial, arterial, "
                                 "minor_arterial, collector, major_collector, minor_collector, "
                                 "local, local_road, ramp"),
    ({"lanes": "2"}, "links[0]: property 'lanes' must be a number"),
])
def test_a_present_invalid_link_type_or_lanes_is_refused(properties: dict[str, Any],
                                                         reason: str) -> None:
    network, problems = parsed(triangle(**properties))
    assert network is None
    assert any(p.startswith(reason) for p in problems), problems


@pytest.mark.parametrize("properties", [[], 0, "", False])
def test_properties_that_are_not_an_object_are_refused(properties: Any) -> None:
    links = triangle()
    links[1]["properties"] = properties
    network, problems = parsed(links)
    assert network is None and problems == ["links[1]: 'properties' must be an object"]


def test_zones_may_be_a_multipolygon_of_one_polygon_or_a_point() -> None:
    zones = [zone({"type": "MultiPolygon", "coordinates": [[ring(0, 0)]]}, 1, 1),
             zone({"type": "Point", "coordinates": C}, 2, 3),
             zone({"type": "Polygon", "coordinates": [ring(0.01, 0)]}, 3, 2)]
    network, problems = parsed(triangle(), zones)
    assert problems == [] and network is not None
    assert [(z.id, len(z.polygon)) for z in network.zones] == [(1, 1), (2, 0), (3, 1)]
    assert network.zones[0].polygon[0] == tuple(tuple(p) for p in ring(0, 0))


def test_a_zone_of_several_polygons_or_a_point_off_its_centroid_is_refused() -> None:
    parts = {"type": "MultiPolygon", "coordinates": [[ring(0, 0)], [ring(0.005, 0.005)]]}
    zones = [zone({"type": "Point", "coordinates": C}, 1, 3), zone(parts, 2, 1),
             zone({"type": "LineString", "coordinates": [A, B]}, 3, 1)]
    network, problems = parsed(triangle(), zones)
    assert network is None
    assert problems == [
        "zones[1]: a MultiPolygon of 2 polygons: a zone is one polygon (dissolve its parts "
        "into one, or split it into zones)",
        "zones[2]: geometry must be a Polygon, a MultiPolygon of one polygon, or a Point (a "
        "zone without a polygon)"]
    network, problems = parsed(triangle(), [zone({"type": "Point", "coordinates": B}, 1, 3)])
    assert network is None and len(problems) == 1
    assert problems[0].startswith("zones[0]: the point is 1112.0 m from its centroid node 3")


def test_problems_name_the_real_feature_after_point_zones() -> None:
    zones = [zone({"type": "Point", "coordinates": A}, 1, 1),
             zone({"type": "Point", "coordinates": B}, 2, 2),
             zone({"type": "Polygon", "coordinates": [ring(0, 0)]}, 3, 99),
             zone({"type": "Point", "coordinates": C}, 3, 3)]
    network, problems = parsed(triangle(), zones)
    assert network is None
    assert problems == ["zones[2]: zone 3: unknown centroid node 99",
                        "zones[3]: duplicate id '3'"]


def test_demand_is_read_and_every_bad_row_named() -> None:
    zones = [zone({"type": "Point", "coordinates": A}, 1, 1),
             zone({"type": "Point", "coordinates": C}, 2, 3)]
    network, problems = parsed(triangle(), zones, [[1, 2, 5.5], [2.0, 1, 3]])
    assert problems == [] and network is not None
    assert network.od_matrix == ((1, 2, 5.5), (2, 1, 3.0))
    network, problems = parsed(triangle(), zones, [[1, 2, 5], [1, 7, 1], [1, 2, 1], [1, 2],
                                                   [1, 1, -1], [True, 1, 1]])
    assert network is None
    assert problems == ["demand[1]: unknown destination zone 7",
                        "demand[2]: a second row for 1->2",
                        "demand[3]: must be [origin zone, destination zone, trips]",
                        "demand[4]: trips must be a finite, non-negative number (not NaN or "
                        "Infinity)",
                        "demand[5]: origin zone must be an integer"]
    assert parsed(triangle(), zones, {"1": 2})[1] == [
        "demand[-1]: must be a list of [origin zone, destination zone, trips]"]


def sioux_falls() -> Network:
    texts = [(SIOUX_FALLS / f"SiouxFalls_{kind}.tntp").read_text()
             for kind in ("net", "trips", "node")]
    network, problems = parse_tntp(*texts, 200_000)
    assert problems == [] and network is not None
    return network


def drawn(network: Network) -> tuple[Link, ...]:
    """Links as every GIS export draws them: a link without a shape as the straight line
    between its nodes (docs/gis.md)."""
    where = {n.id: (n.x, n.y) for n in network.nodes}
    return tuple(replace(k, geometry=k.geometry or (where[k.from_node], where[k.to_node]))
                 for k in network.links)


def test_a_geojson_export_imports_back_as_the_same_network() -> None:
    original = sioux_falls()
    assert original.od_matrix and all(not z.polygon for z in original.zones)
    document = json.loads(json.dumps(geojson_document(original, "Sioux Falls")))
    network, problems = parse_network(document["links"], document["zones"],
                                      document["first_thru_node"], 200_000,
                                      document.get("demand"))
    assert problems == [] and network is not None
    assert network.nodes == original.nodes
    assert network.links == drawn(original)
    assert network.zones == original.zones
    assert network.od_matrix == original.od_matrix
    assert network.first_thru_node == original.first_thru_node
    assert network.problems() == []
    # Exported again, it is the same document: nothing more is lost on a second trip.
    assert json.loads(json.dumps(geojson_document(network, "Sioux Falls"))) == document


def test_zones_with_polygons_round_trip_through_geojson() -> None:
    original = sioux_falls()
    where = {n.id: (n.x, n.y) for n in original.nodes}
    zones = tuple(replace(z, polygon=(tuple(tuple(p) for p in ring(
        where[z.centroid_node][0] - 0.001, where[z.centroid_node][1] - 0.001)),))
        for z in original.zones)
    original = replace(original, zones=zones)
    document = json.loads(json.dumps(geojson_document(original, "with polygons")))
    assert {f["geometry"]["type"] for f in document["zones"]["features"]} == {"MultiPolygon"}
    network, problems = parse_network(document["links"], document["zones"], 1, 200_000,
                                      document["demand"])
    assert problems == [] and network is not None
    assert network.zones == original.zones
