"""GeoJSON FeatureCollections → a domain Network, listing every rejected feature.

Node positions come from the link ends: each node is where most of its links' ends put it
(`_place_nodes`). A line drawn from its to_node to its from_node is turned round; a line with
an end farther than END_TOLERANCE_M from its node is refused (decision 0714)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

from domain import rules
from domain.rules import EARTH_M, END_TOLERANCE_M, metres
from domain.values import (
    Coordinate,
    Link,
    Network,
    Node,
    Zone,
    link_problems,
    oriented,
    zone_problems,
)

LINK_REQUIRED = ("from_node", "to_node", "capacity", "length", "free_flow_time")
LINK_OPTIONAL = {"b": 0.15, "power": 4.0, "toll": 0.0, "lanes": 1.0}
ZONE_REQUIRED = ("centroid_node", "population", "jobs")
MAX_DEMAND_PROBLEMS = 1000  # a bad matrix of millions of rows is not listed row by row


@dataclass(frozen=True)
class FeatureProblem:
    """Why one feature of one collection was rejected."""

    collection: str
    index: int
    reason: str

    def __str__(self) -> str:
        return f"{self.collection}[{self.index}]: {self.reason}"


@dataclass
class Parsed:
    """What was read, and every problem found on the way."""

    links: list[Link] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    nodes: dict[int, Node] = field(default_factory=dict)
    problems: list[FeatureProblem] = field(default_factory=list)
    # Feature index of each link and zone read; where each zone drawn as a point is.
    link_index: list[int] = field(default_factory=list)
    zone_index: list[int] = field(default_factory=list)
    zone_points: dict[int, Coordinate] = field(default_factory=dict)


def parse_network(links: dict[str, Any], zones: dict[str, Any], first_thru_node: int,
                  max_features: int, demand: Any = None
                  ) -> tuple[Network | None, list[FeatureProblem]]:
    """The network, or None and every problem (each naming its feature's index).

    `demand`, when given, is the OD matrix: a list of [origin zone, destination zone, trips]
    (the `demand` member of a Cartolog GeoJSON export)."""
    parsed = Parsed()
    for name, collection in (("links", links), ("zones", zones)):
        features = _features(name, collection, max_features, parsed)
        for index, feature in enumerate(features):
            reasons = (_link if name == "links" else _zone)(feature, index, parsed)
            parsed.problems.extend(FeatureProblem(name, index, r) for r in reasons)
    _place_nodes(parsed)
    od_matrix = _demand(demand, parsed)
    if parsed.problems:
        return None, parsed.problems
    network = Network(tuple(parsed.nodes[k] for k in sorted(parsed.nodes)),
                      tuple(parsed.links), tuple(parsed.zones), first_thru_node, od_matrix)
    problems = _element_problems(network, parsed)
    return (None, problems) if problems else (network, [])


def parse_zones(zones: dict[str, Any], node_ids: set[int], max_features: int
                ) -> tuple[tuple[Zone, ...] | None, list[FeatureProblem]]:
    """Zones for a network whose nodes are `node_ids` (a zone layer added to an imported
    network), through the same checks as `parse_network`'s zones."""
    parsed = Parsed()
    for index, feature in enumerate(_features("zones", zones, max_features, parsed)):
        parsed.problems.extend(FeatureProblem("zones", index, r)
                               for r in _zone(feature, index, parsed))
    if parsed.problems:
        return None, parsed.problems
    found = [FeatureProblem("zones", i, p) for i, zone in zip(parsed.zone_index, parsed.zones,
                                                               strict=True)
             for p in zone_problems(zone, node_ids)]
    found += _duplicates("zones", [zone.id for zone in parsed.zones], parsed.zone_index)
    return (None, found) if found else (tuple(parsed.zones), [])


def _element_problems(network: Network, parsed: Parsed) -> list[FeatureProblem]:
    """The domain's rules, each problem named by the feature it comes from."""
    node_ids = {n.id for n in network.nodes}
    found = [FeatureProblem("links", i, p) for i, link in zip(parsed.link_index, network.links,
                                                               strict=True)
             for p in link_problems(link, node_ids)]
    found += [FeatureProblem("zones", i, p) for i, zone in zip(parsed.zone_index, network.zones,
                                                               strict=True)
              for p in zone_problems(zone, node_ids)]
    found += _zone_point_problems(network, parsed)
    found += _duplicates("links", [link.id for link in network.links], parsed.link_index)
    found += _duplicates("zones", [zone.id for zone in network.zones], parsed.zone_index)
    problem = rules.integer_problem("first_thru_node", network.first_thru_node)
    return found + ([FeatureProblem("first_thru_node", -1, problem)] if problem else [])


def _duplicates(collection: str, ids: list[Any], indices: list[int]) -> list[FeatureProblem]:
    seen: set[Any] = set()
    found = []
    for index, identity in zip(indices, ids, strict=True):
        if identity in seen:
            found.append(FeatureProblem(collection, index, f"duplicate id {str(identity)[:40]!r}"))
        seen.add(identity)
    return found


def _zone_point_problems(network: Network, parsed: Parsed) -> list[FeatureProblem]:
    """A zone drawn as a point has no polygon and sits at its centroid node: a point
    elsewhere would be lost, so it is refused."""
    where = {n.id: (n.x, n.y) for n in network.nodes}
    found = []
    for index, zone in zip(parsed.zone_index, network.zones, strict=True):
        point, node = parsed.zone_points.get(index), where.get(zone.centroid_node)
        if point is None or node is None:
            continue
        gap = metres(point, node)
        if gap > END_TOLERANCE_M:
            found.append(FeatureProblem("zones", index, (
                f"the point is {gap:.1f} m from its centroid node {zone.centroid_node} (at "
                f"most {END_TOLERANCE_M:g} m): a zone drawn as a point must sit on its "
                "centroid node; draw the zone as a Polygon")))
    return found


def _features(name: str, collection: Any, limit: int, parsed: Parsed) -> list[Any]:
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        parsed.problems.append(FeatureProblem(name, -1, "not a GeoJSON FeatureCollection"))
        return []
    features = collection.get("features")
    if not isinstance(features, list):
        parsed.problems.append(FeatureProblem(name, -1, "'features' must be a list"))
        return []
    if len(features) > limit:
        parsed.problems.append(FeatureProblem(
            name, -1, f"{len(features)} features: at most {limit} are accepted"))
        return []
    return features


def _properties(feature: Any) -> tuple[dict[str, Any], Any, list[str]]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return {}, None, ["not a GeoJSON Feature"]
    properties = feature.get("properties")
    if properties is None:  # GeoJSON's "no properties"
        properties = {}
    if not isinstance(properties, dict):
        return {}, None, ["'properties' must be an object"]
    identity = properties.get("id", feature.get("id"))
    return properties, identity, []


def _numbers(properties: dict[str, Any], required: tuple[str, ...],
             optional: dict[str, float]) -> tuple[dict[str, float], list[str]]:
    """The numeric properties (their ranges are the domain's rules, checked later)."""
    values: dict[str, float] = {}
    reasons = [f"missing required property {k!r}" for k in required if properties.get(k) is None]
    for key in (*required, *optional):
        raw = properties.get(key)
        if raw is None:  # an optional property given as null takes its default
            raw = optional.get(key)
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            reasons.append(f"property {key!r} must be a number")
        elif abs(raw) > rules.MAX_MAGNITUDE:
            reasons.append(f"property {key!r} must be at most {rules.MAX_MAGNITUDE:g} in "
                           "magnitude")
        else:
            values[key] = float(raw)
    return values, reasons


def _integers(properties: dict[str, Any], keys: tuple[str, ...], low: int = 1) -> list[str]:
    """Integer properties (1.0 counts as 1), within the domain's integer range."""
    found: list[str] = []
    for key in keys:
        raw = properties.get(key)
        if isinstance(raw, float) and raw.is_integer() and abs(raw) <= rules.MAX_INTEGER:
            raw = int(raw)
        if raw is not None:
            found += rules.collect(rules.integer_problem(f"property {key!r}", raw, low))
    return found


def _coordinates(raw: Any) -> tuple[list[Coordinate], list[str]]:
    if not isinstance(raw, list) or len(raw) > rules.MAX_POSITIONS:
        return [], [f"coordinates must be a list of at most {rules.MAX_POSITIONS} "
                    "[longitude, latitude] positions"]
    points: list[Coordinate] = []
    for index, position in enumerate(raw):
        pair = position[:2] if isinstance(position, list) and len(position) >= 2 else position
        problem = rules.coordinate_problem(f"position {index}", pair)
        if problem:
            return [], [problem]
        points.append((float(pair[0]), float(pair[1])))
    return points, []


def _link(feature: Any, index: int, parsed: Parsed) -> list[str]:
    properties, identity, reasons = _properties(feature)
    if reasons:
        return reasons
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") != "LineString":
        reasons.append("geometry must be a LineString")
        points: list[Coordinate] = []
    else:
        points, bad = _coordinates(geometry.get("coordinates"))
        reasons += bad
        if not bad and len(points) < 2:
            reasons.append("a LineString needs at least two positions")
    values, bad = _numbers(properties, LINK_REQUIRED, LINK_OPTIONAL)
    reasons += bad + _integers(properties, ("from_node", "to_node"))
    link_type = properties.get("link_type")  # absent or null: 1; 0 is a link type too
    if isinstance(link_type, str) and rules.decimal(link_type) is None:
        # a name: 'primary', 'minor arterial' (decision 0715); a number must be a JSON number
        link_type = rules.link_type_named(link_type)
        if link_type is None:
            reasons.append(rules.link_type_name_problem("property 'link_type'",
                                                        properties["link_type"]))
    else:
        reasons += _integers(properties, ("link_type",), low=0)
    if isinstance(identity, bool) or not isinstance(identity, str | int):
        reasons.append("property 'id' must be text or an integer")
    if reasons:
        return reasons
    # lanes: absent or null takes LINK_OPTIONAL's 1; a 0 is kept, and refused by the
    # domain's rule (lanes > 0) with the others.
    parsed.links.append(Link(
        id=str(identity), from_node=int(values["from_node"]), to_node=int(values["to_node"]),
        capacity=values["capacity"], length=values["length"],
        free_flow_time=values["free_flow_time"], b=values["b"], power=values["power"],
        toll=values["toll"], link_type=1 if link_type is None else int(link_type),
        lanes=values["lanes"], geometry=tuple(points)))
    parsed.link_index.append(index)
    return []


def _place_nodes(parsed: Parsed) -> None:
    """Each node where most of its links' ends put it; then every link's line runs from its
    from_node to its to_node: turned round when drawn the other way, refused when an end is
    farther than END_TOLERANCE_M from its node."""
    ends: dict[int, list[Coordinate]] = defaultdict(list)
    for link in parsed.links:
        ends[link.from_node].append(link.geometry[0])
        ends[link.to_node].append(link.geometry[-1])
    parsed.nodes = {node: Node(node, *_most_agreed(points)) for node, points in ends.items()}
    kept: list[Link] = []
    indices: list[int] = []
    for index, link in zip(parsed.link_index, parsed.links, strict=True):
        start, end = (parsed.nodes[link.from_node], parsed.nodes[link.to_node])
        drawn, problem = oriented(link, (start.x, start.y), (end.x, end.y))
        if drawn is None:
            parsed.problems.append(FeatureProblem("links", index, str(problem)))
            continue
        kept.append(drawn)
        indices.append(index)
    parsed.links, parsed.link_index = kept, indices


def _most_agreed(points: list[Coordinate]) -> Coordinate:
    """The position most of `points` agree on (within about END_TOLERANCE_M), the earliest
    of them when as many agree on two: counted on a grid of cells END_TOLERANCE_M wide, each
    cell scoring the points in it and its eight neighbours (linear in the points)."""
    if len(points) == 1:
        return points[0]
    high = max((abs(y) for _, y in points), default=0.0)
    height = math.degrees(END_TOLERANCE_M / EARTH_M)
    width = height / max(math.cos(math.radians(min(high, 89.0))), 1e-3)
    cells = [(math.floor(x / width), math.floor(y / height)) for x, y in points]
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for cell in cells:
        counts[cell] += 1
    best, best_score = 0, -1
    for i, (cx, cy) in enumerate(cells):
        score = sum(counts.get((cx + dx, cy + dy), 0) for dx in (-1, 0, 1) for dy in (-1, 0, 1))
        if score > best_score:
            best, best_score = i, score
    return points[best]


def _demand(raw: Any, parsed: Parsed) -> tuple[tuple[int, int, float], ...]:
    """The OD matrix given as [[origin zone, destination zone, trips], ...] (or none)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        parsed.problems.append(FeatureProblem(
            "demand", -1, "must be a list of [origin zone, destination zone, trips]"))
        return ()
    # Zones that could not be read are not "unknown": their problems are listed already.
    zones_read = not any(p.collection == "zones" for p in parsed.problems)
    zone_ids = {zone.id for zone in parsed.zones} if zones_read else None
    found: list[tuple[int, int, float]] = []
    seen: set[tuple[int, int]] = set()
    for index, row in enumerate(raw):
        reasons = _demand_row_problems(row, zone_ids, seen)
        parsed.problems.extend(FeatureProblem("demand", index, r) for r in reasons)
        if not reasons:
            origin, destination, trips = _whole(row[0]), _whole(row[1]), row[2]
            seen.add((origin, destination))
            found.append((origin, destination, float(trips)))
        if len(parsed.problems) > MAX_DEMAND_PROBLEMS:
            break
    return tuple(found)


def _whole(value: Any) -> Any:
    """1.0 counts as 1 (as in `_integers`)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= rules.MAX_INTEGER:
        return int(value)
    return value


def _demand_row_problems(row: Any, zone_ids: set[int] | None, seen: set[tuple[int, int]]
                         ) -> list[str]:
    if not isinstance(row, list) or len(row) != 3:
        return ["must be [origin zone, destination zone, trips]"]
    origin, destination, trips = _whole(row[0]), _whole(row[1]), row[2]
    reasons = rules.collect(rules.integer_problem("origin zone", origin),
                            rules.integer_problem("destination zone", destination),
                            rules.number_problem("trips", trips))
    if reasons:
        return reasons
    reasons = [f"unknown {what} zone {zone}" for what, zone in
               (("origin", origin), ("destination", destination))
               if zone_ids is not None and zone not in zone_ids]
    if (origin, destination) in seen:
        reasons.append(f"a second row for {origin}->{destination}")
    return reasons


def _zone(feature: Any, index: int, parsed: Parsed) -> list[str]:
    properties, identity, reasons = _properties(feature)
    if reasons:
        return reasons
    geometry = feature.get("geometry")
    point: Coordinate | None = None
    if isinstance(geometry, dict) and geometry.get("type") == "Point":
        point, reasons = _point(geometry.get("coordinates"))
        rings: list[list[Coordinate]] = []
    else:
        rings, reasons = _polygon(geometry)
    values, bad = _numbers(properties, ZONE_REQUIRED, {})
    reasons += bad + _integers(properties, ("centroid_node",))
    if not isinstance(identity, int) or isinstance(identity, bool):
        reasons.append("property 'id' must be an integer zone number")
    if reasons:
        return reasons
    assert isinstance(identity, int)
    parsed.zones.append(Zone(identity, int(values["centroid_node"]), values["population"],
                             values["jobs"], tuple(tuple(ring) for ring in rings)))
    parsed.zone_index.append(index)
    if point is not None:
        parsed.zone_points[index] = point
    return []


def _point(raw: Any) -> tuple[Coordinate | None, list[str]]:
    """A zone drawn as a point: a zone without a polygon (as Cartolog exports one)."""
    pair = raw[:2] if isinstance(raw, list) and len(raw) >= 2 else raw
    problem = rules.coordinate_problem("point", pair)
    if problem:
        return None, [problem]
    return (float(pair[0]), float(pair[1])), []


def _polygon(geometry: Any) -> tuple[list[list[Coordinate]], list[str]]:
    """A Polygon's rings; a MultiPolygon of one polygon is that polygon. A zone is one
    polygon, so a MultiPolygon of more is refused rather than cut down (decision 0714)."""
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in ("Polygon", "MultiPolygon"):
        return [], ["geometry must be a Polygon, a MultiPolygon of one polygon, or a Point "
                    "(a zone without a polygon)"]
    assert isinstance(geometry, dict)
    raw = geometry.get("coordinates")
    if kind == "MultiPolygon":
        if not isinstance(raw, list) or not raw:
            return [], ["a MultiPolygon needs one polygon"]
        if len(raw) > 1:
            return [], [f"a MultiPolygon of {len(raw)} polygons: a zone is one polygon "
                        "(dissolve its parts into one, or split it into zones)"]
        raw = raw[0]
    if not isinstance(raw, list) or not raw:
        return [], ["a Polygon needs at least one ring"]
    rings: list[list[Coordinate]] = []
    for ring in raw:
        points, reasons = _coordinates(ring)
        if reasons:
            return [], reasons
        if len(points) < 4 or points[0] != points[-1]:
            return [], ["every ring must be closed and have at least four positions"]
        rings.append(points)
    polygon = shape({"type": "Polygon", "coordinates": rings})
    if not shapely.is_valid(polygon):
        return [], [f"invalid polygon: {explain_validity(polygon)}"]
    return rings, []
