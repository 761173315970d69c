"""GeoJSON FeatureCollections → a domain Network, listing every rejected feature."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

from domain import rules
from domain.values import Coordinate, Link, Network, Node, Zone, link_problems, zone_problems

LINK_REQUIRED = ("from_node", "to_node", "capacity", "length", "free_flow_time")
LINK_OPTIONAL = {"b": 0.15, "power": 4.0, "toll": 0.0, "lanes": 1.0}
ZONE_REQUIRED = ("centroid_node", "population", "jobs")


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


def parse_network(links: dict[str, Any], zones: dict[str, Any], first_thru_node: int,
                  max_features: int) -> tuple[Network | None, list[FeatureProblem]]:
    """The network, or None and every problem (each naming its feature's index)."""
    parsed = Parsed()
    for name, collection in (("links", links), ("zones", zones)):
        features = _features(name, collection, max_features, parsed)
        for index, feature in enumerate(features):
            reasons = (_link if name == "links" else _zone)(feature, parsed)
            parsed.problems.extend(FeatureProblem(name, index, r) for r in reasons)
    if parsed.problems:
        return None, parsed.problems
    network = Network(tuple(parsed.nodes[k] for k in sorted(parsed.nodes)),
                      tuple(parsed.links), tuple(parsed.zones), first_thru_node)
    problems = _element_problems(network)
    return (None, problems) if problems else (network, [])


def parse_zones(zones: dict[str, Any], node_ids: set[int], max_features: int
                ) -> tuple[tuple[Zone, ...] | None, list[FeatureProblem]]:
    """Zones for a network whose nodes are `node_ids` (a zone layer added to an imported
    network), through the same checks as `parse_network`'s zones."""
    parsed = Parsed()
    for index, feature in enumerate(_features("zones", zones, max_features, parsed)):
        parsed.problems.extend(FeatureProblem("zones", index, r) for r in _zone(feature, parsed))
    if parsed.problems:
        return None, parsed.problems
    found = [FeatureProblem("zones", i, p) for i, zone in enumerate(parsed.zones)
             for p in zone_problems(zone, node_ids)]
    found += _duplicates("zones", [zone.id for zone in parsed.zones])
    return (None, found) if found else (tuple(parsed.zones), [])


def _element_problems(network: Network) -> list[FeatureProblem]:
    """The domain's rules, each problem named by the feature it comes from."""
    node_ids = {n.id for n in network.nodes}
    found = [FeatureProblem("links", i, p) for i, link in enumerate(network.links)
             for p in link_problems(link, node_ids)]
    found += [FeatureProblem("zones", i, p) for i, zone in enumerate(network.zones)
              for p in zone_problems(zone, node_ids)]
    found += _duplicates("links", [link.id for link in network.links])
    found += _duplicates("zones", [zone.id for zone in network.zones])
    problem = rules.integer_problem("first_thru_node", network.first_thru_node)
    return found + ([FeatureProblem("first_thru_node", -1, problem)] if problem else [])


def _duplicates(collection: str, ids: list[Any]) -> list[FeatureProblem]:
    seen: set[Any] = set()
    found = []
    for index, identity in enumerate(ids):
        if identity in seen:
            found.append(FeatureProblem(collection, index, f"duplicate id {str(identity)[:40]!r}"))
        seen.add(identity)
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
    properties = feature.get("properties") or {}
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


def _link(feature: Any, parsed: Parsed) -> list[str]:
    properties, identity, reasons = _properties(feature)
    if reasons:
        return reasons
    geometry = feature.get("geometry") or {}
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
    reasons += _integers(properties, ("link_type",), low=0)
    if isinstance(identity, bool) or not isinstance(identity, str | int):
        reasons.append("property 'id' must be text or an integer")
    if reasons:
        return reasons
    from_node, to_node = int(values["from_node"]), int(values["to_node"])
    parsed.nodes.setdefault(from_node, Node(from_node, *points[0]))
    parsed.nodes.setdefault(to_node, Node(to_node, *points[-1]))
    parsed.links.append(Link(
        id=str(identity), from_node=from_node, to_node=to_node, capacity=values["capacity"],
        length=values["length"], free_flow_time=values["free_flow_time"], b=values["b"],
        power=values["power"], toll=values["toll"],
        link_type=int(properties.get("link_type") or 1), lanes=values["lanes"] or 1.0,
        geometry=tuple(points)))
    return []


def _zone(feature: Any, parsed: Parsed) -> list[str]:
    properties, identity, reasons = _properties(feature)
    if reasons:
        return reasons
    rings, reasons = _polygon(feature.get("geometry"))
    values, bad = _numbers(properties, ZONE_REQUIRED, {})
    reasons += bad + _integers(properties, ("centroid_node",))
    if not isinstance(identity, int) or isinstance(identity, bool):
        reasons.append("property 'id' must be an integer zone number")
    if reasons:
        return reasons
    assert isinstance(identity, int)
    parsed.zones.append(Zone(identity, int(values["centroid_node"]), values["population"],
                             values["jobs"], tuple(tuple(ring) for ring in rings)))
    return []


def _polygon(geometry: Any) -> tuple[list[list[Coordinate]], list[str]]:
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        return [], ["geometry must be a Polygon"]
    raw = geometry.get("coordinates")
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
