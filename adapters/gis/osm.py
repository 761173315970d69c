"""OpenStreetMap PBF (via pyosmium) -> a routable network: drivable ways split at
intersections into links (one per allowed direction), the largest strongly connected part
kept, nodes numbered 1..N, and zones as a hexagon grid (adapters/gis/osm_zones.py).

Lengths are km and free-flow times minutes (the model's default units)."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import osmium
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from adapters.gis.osm_tags import direction, directions, road_class
from adapters.gis.osm_zones import hexagon_zones
from adapters.gis.problems import FeatureProblem, ImportRejected
from domain.values import Coordinate, Link, Network, Node

EARTH_KM = 6371.0088


@dataclass(frozen=True)
class OsmOptions:
    """Zones: a hexagon grid of this width (km, across flats); at most `max_features` links
    (a file with more is refused, as the other formats are)."""

    hexagon_km: float = 1.0
    max_features: int = 200_000


@dataclass
class Way:
    """A drivable way as read: id, tags, node refs and their locations."""

    id: int
    tags: dict[str, str]
    refs: list[int]
    points: list[Coordinate | None]


class Ways(osmium.SimpleHandler):
    """Collects drivable ways (with node locations) in one pass."""

    def __init__(self) -> None:
        super().__init__()
        self.ways: list[Way] = []

    def way(self, way: osmium.osm.Way) -> None:
        """Keep a way cars may use."""
        tags = {tag.k: tag.v for tag in way.tags}
        if road_class(tags) is None:
            return
        points = [(float(n.location.lon), float(n.location.lat)) if n.location.valid()
                  else None for n in way.nodes]
        self.ways.append(Way(way.id, tags, [n.ref for n in way.nodes], points))


def read_osm(path: Path, options: OsmOptions) -> Network:
    """The network of an OSM extract; ImportRejected when unreadable or without roads."""
    handler = Ways()
    try:
        handler.apply_file(str(path), locations=True)
    except (RuntimeError, OSError, ValueError) as error:
        raise ImportRejected("the OSM file cannot be read", [
            FeatureProblem("file", -1, f"not a readable OSM file: {error}")]) from None
    if not handler.ways:
        raise ImportRejected("the OSM file has no drivable roads", [FeatureProblem(
            "file", -1, "no way with a drivable highway tag (motorway .. service)")])
    links, points = _links(handler.ways)
    if len(links) > options.max_features:
        raise ImportRejected("the OSM file has too many roads", [FeatureProblem(
            "file", -1, f"its drivable roads make {len(links)} links; at most "
                        f"{options.max_features} are accepted (CARTOLOG_API_MAX_FEATURES): "
                        f"cut a smaller extract")])
    links = _strongly_connected(links)
    if not links:
        raise ImportRejected("the OSM roads form no routable network", [FeatureProblem(
            "file", -1, "no two intersections are connected both ways")])
    return _numbered(links, points, options)


def _links(ways: list[Way]) -> tuple[list[Link], dict[int, Coordinate]]:
    """Links between OSM node ids: ways split at every node shared with another way."""
    uses = Counter(ref for way in ways for ref in way.refs)
    for way in ways:
        uses[way.refs[0]] += 1
        uses[way.refs[-1]] += 1
    links: list[Link] = []
    points: dict[int, Coordinate] = {}
    for way in ways:
        for index, (refs, shape) in enumerate(_segments(way, uses)):
            points[refs[0]], points[refs[-1]] = shape[0], shape[-1]
            links.extend(_directed(way, index, refs[0], refs[-1], shape))
    return links, points


def _segments(way: Way, uses: Counter[int]) -> list[tuple[list[int], list[Coordinate]]]:
    """Pieces of a way between intersections; a piece with a missing location is dropped."""
    pieces: list[tuple[list[int], list[Coordinate]]] = []
    refs: list[int] = []
    shape: list[Coordinate | None] = []
    for position, (ref, point) in enumerate(zip(way.refs, way.points, strict=True)):
        refs.append(ref)
        shape.append(point)
        if position > 0 and (uses[ref] > 1 or position == len(way.refs) - 1):
            if None not in shape and refs[0] != refs[-1]:
                pieces.append((list(refs), [p for p in shape if p is not None]))
            refs, shape = [ref], [point]
    return pieces


def _directed(way: Way, index: int, start: int, end: int, shape: list[Coordinate]
              ) -> list[Link]:
    road = road_class(way.tags)
    assert road is not None
    forward, backward = directions(way.tags, road)
    length = _length_km(shape)
    found = []
    for allowed, suffix, a, b, line in ((forward, "f", start, end, shape),
                                        (backward, "b", end, start, shape[::-1])):
        if not allowed:
            continue
        lane = direction(way.tags, road, suffix == "f", forward and backward)
        found.append(Link(
            id=f"{way.id}-{index}-{suffix}", from_node=a, to_node=b, capacity=lane.capacity,
            length=length, free_flow_time=60.0 * length / lane.speed_kmh, lanes=lane.lanes,
            link_type=road.link_type, geometry=tuple(line)))
    return found


def _length_km(shape: list[Coordinate]) -> float:
    total = 0.0
    for (x1, y1), (x2, y2) in itertools.pairwise(shape):
        p1, p2 = math.radians(y1), math.radians(y2)
        dp, dl = p2 - p1, math.radians(x2 - x1)
        h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        total += 2 * EARTH_KM * math.asin(math.sqrt(h))
    return max(total, 1e-6)


def _strongly_connected(links: list[Link]) -> list[Link]:
    """The links of the largest strongly connected part: every node reaches every other."""
    ids = {n: i for i, n in enumerate(sorted({k.from_node for k in links}
                                             | {k.to_node for k in links}))}
    rows = np.array([ids[k.from_node] for k in links])
    cols = np.array([ids[k.to_node] for k in links])
    graph = coo_matrix((np.ones(len(links)), (rows, cols)), shape=(len(ids), len(ids)))
    _, labels = connected_components(graph, directed=True, connection="strong")
    largest = np.bincount(labels).argmax()
    keep = labels == largest
    return [k for k in links if keep[ids[k.from_node]] and keep[ids[k.to_node]]]


def _numbered(links: list[Link], points: dict[int, Coordinate], options: OsmOptions
              ) -> Network:
    """OSM node ids (64-bit) renumbered 1..N in id order; zones attached to the nodes."""
    used = sorted({k.from_node for k in links} | {k.to_node for k in links})
    number = {osm: i + 1 for i, osm in enumerate(used)}
    nodes = tuple(Node(number[osm], *points[osm]) for osm in used)
    renumbered = tuple(
        Link(k.id, number[k.from_node], number[k.to_node], k.capacity, k.length,
             k.free_flow_time, k.b, k.power, k.toll, k.link_type, k.lanes, k.geometry)
        for k in sorted(links, key=lambda k: k.id))
    zones = hexagon_zones(nodes, renumbered, options.hexagon_km)
    return Network(nodes, renumbered, zones, 1)
