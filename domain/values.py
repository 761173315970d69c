"""Value objects: plain, immutable, serialisable. Geometry is lists of coordinates."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from domain import rules
from domain.errors import InvalidCommand

Coordinate = tuple[float, float]

TENANT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_SHOWN = 40
MAX_RINGS = 100
MAX_OD_PROBLEMS = 20
CARTOLOG_NAMESPACE = uuid.UUID("5b7f8c3e-52c1-4cf4-9a53-1f1b9b8e6a10")


@dataclass(frozen=True)
class Actor:
    """Who issued a command (the token's `sub`) and the correlation id of the request."""

    sub: str
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        found = rules.collect(rules.text_problem("an actor", self.sub, rules.MAX_NAME),
                              rules.text_problem("a correlation id", self.correlation_id,
                                                 rules.MAX_NAME))
        if found:
            raise InvalidCommand("the actor was rejected", found)


@dataclass(frozen=True)
class Node:
    """A network node; x, y are WGS84 longitude/latitude when known."""

    id: int
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True)
class Link:
    """A directed road link with BPR parameters."""

    id: str
    from_node: int
    to_node: int
    capacity: float
    length: float
    free_flow_time: float
    b: float = 0.15
    power: float = 4.0
    toll: float = 0.0
    link_type: int = 1
    lanes: float = 1.0
    geometry: tuple[Coordinate, ...] = ()


def oriented(link: Link, start: Coordinate, end: Coordinate,
             placed: str = "each node is where most of its links end"
             ) -> tuple[Link | None, str | None]:
    """`link` with its drawn line running from its from_node at `start` to its to_node at
    `end` (rules.line_direction): turned round when drawn the other way; None and why when an
    end is farther than rules.END_TOLERANCE_M from its node (`placed` says where the nodes'
    positions come from). A link without a line is as it is."""
    if len(link.geometry) < 2:
        return link, None
    turned, gaps = rules.line_direction(link.geometry, start, end)
    if turned is None:
        return None, rules.far_ends_problem(link.from_node, link.to_node, gaps, placed)
    return (replace(link, geometry=link.geometry[::-1]) if turned else link), None


@dataclass(frozen=True)
class Zone:
    """A traffic zone attached to its centroid node."""

    id: int
    centroid_node: int
    population: float = 0.0
    jobs: float = 0.0
    polygon: tuple[tuple[Coordinate, ...], ...] = ()


@dataclass(frozen=True)
class DemandParameters:
    """Gravity-model parameters of a scenario."""

    trip_rate: float = 1.0
    deterrence: str = "exponential"
    beta: float = 0.1


@dataclass(frozen=True)
class Network:
    """A base network: nodes, links, zones and, optionally, an explicit OD matrix."""

    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    zones: tuple[Zone, ...]
    first_thru_node: int = 1
    od_matrix: tuple[tuple[int, int, float], ...] = ()

    def canonical_json(self) -> bytes:
        """Deterministic bytes: the same network always hashes the same.

        The bytes of ``json.dumps(asdict(self), sort_keys=True)``, built without asdict's deep
        copy of every coordinate and OD cell (a third of the time of a big import, in the API
        process): nodes, links and zones hold only numbers, strings and tuples of them."""
        document = {"nodes": [vars(node) for node in self.nodes],
                    "links": [vars(link) for link in self.links],
                    "zones": [vars(zone) for zone in self.zones],
                    "first_thru_node": self.first_thru_node, "od_matrix": self.od_matrix}
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def sha256(self) -> str:
        """Content hash of the canonical form."""
        return hashlib.sha256(self.canonical_json()).hexdigest()

    def problems(self) -> list[str]:
        """Every rule this network breaks, each naming the offending item."""
        return network_problems(self)

    @staticmethod
    def from_json(raw: bytes) -> Network:
        """Inverse of canonical_json."""
        doc = json.loads(raw)
        return Network(
            nodes=tuple(Node(**n) for n in doc["nodes"]),
            links=tuple(
                Link(**{**k, "geometry": tuple(tuple(c) for c in k["geometry"])})
                for k in doc["links"]
            ),
            zones=tuple(
                Zone(**{**z, "polygon": tuple(tuple(tuple(c) for c in ring)
                                               for ring in z["polygon"])})
                for z in doc["zones"]
            ),
            first_thru_node=doc["first_thru_node"],
            od_matrix=tuple((int(o), int(d), float(t)) for o, d, t in doc["od_matrix"]),
        )


def tenant_uuid(tenant_id: str) -> uuid.UUID:
    """The Tenant aggregate id is derived from its name, so a name is registered once."""
    return uuid.uuid5(CARTOLOG_NAMESPACE, f"tenant:{tenant_id}")


def plain(value: Any) -> Any:
    """A dataclass value as JSON-compatible dicts and lists."""
    return json.loads(json.dumps(asdict(value)))


def network_problems(network: Network) -> list[str]:
    """Every rule a network breaks: its nodes, links, zones and OD matrix."""
    node_ids = {n.id for n in network.nodes}
    found = [p for n in network.nodes for p in node_problems(n)]
    if len(node_ids) != len(network.nodes):
        found.append("duplicate node ids")
    if len({link.id for link in network.links}) != len(network.links):
        found.append("duplicate link ids")
    if len({zone.id for zone in network.zones}) != len(network.zones):
        found.append("duplicate zone ids")
    found += rules.collect(rules.integer_problem("first_thru_node", network.first_thru_node))
    for link in network.links:
        found.extend(link_problems(link, node_ids))
    for zone in network.zones:
        found.extend(zone_problems(zone, node_ids))
    return found + _od_problems(network.od_matrix, {z.id for z in network.zones})


def node_problems(node: Node) -> list[str]:
    """Rules of a node: a positive 32-bit id and WGS84 coordinates."""
    where = f"node {node.id}"
    return rules.collect(rules.integer_problem(f"{where}: id", node.id),
                         rules.coordinate_problem(where, (node.x, node.y)))


def link_problems(link: Link, node_ids: set[int] | frozenset[int]) -> list[str]:
    """Rules a single link must satisfy: id, known nodes, finite numbers, WGS84 geometry."""
    where = f"link {str(link.id)[:MAX_SHOWN]!r}"
    found = rules.collect(rules.id_problem(f"{where}: id", link.id))
    found += [f"{where}: unknown node {n}" for n in (link.from_node, link.to_node)
              if n not in node_ids]
    found += rules.collect(
        rules.number_problem(f"{where}: capacity", link.capacity, positive=True),
        rules.number_problem(f"{where}: lanes", link.lanes, positive=True),
        *(rules.number_problem(f"{where}: {name}", getattr(link, name))
          for name in ("length", "free_flow_time", "b", "power", "toll")),
        rules.integer_problem(f"{where}: link_type", link.link_type, 0))
    return found + rules.line_problems(f"{where}: geometry", link.geometry)


def zone_problems(zone: Zone, node_ids: set[int] | frozenset[int]) -> list[str]:
    """Rules a single zone must satisfy: id, known centroid, finite counts, WGS84 polygon."""
    where = f"zone {zone.id}"
    found = [] if zone.centroid_node in node_ids else [
        f"{where}: unknown centroid node {zone.centroid_node}"]
    found += rules.collect(rules.integer_problem(f"{where}: id", zone.id),
                           rules.number_problem(f"{where}: population", zone.population),
                           rules.number_problem(f"{where}: jobs", zone.jobs))
    if len(zone.polygon) > MAX_RINGS:
        return [*found, f"{where}: a polygon has at most {MAX_RINGS} rings"]
    for index, ring in enumerate(zone.polygon):
        found += rules.line_problems(f"{where}: ring {index}", ring)
    return found


def _od_problems(od_matrix: tuple[tuple[int, int, float], ...], zone_ids: set[int]
                 ) -> list[str]:
    found: list[str] = []
    for origin, destination, trips in od_matrix:
        where = f"trips {origin}->{destination}"
        found += [f"{where}: unknown zone {z}" for z in (origin, destination)
                  if z not in zone_ids]
        found += rules.collect(rules.number_problem(where, trips))
        if len(found) > MAX_OD_PROBLEMS:
            break
    return found
