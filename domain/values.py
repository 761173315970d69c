"""Value objects: plain, immutable, serialisable. Geometry is lists of coordinates."""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

Coordinate = tuple[float, float]

TENANT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
CARTOLOG_NAMESPACE = uuid.UUID("5b7f8c3e-52c1-4cf4-9a53-1f1b9b8e6a10")


@dataclass(frozen=True)
class Actor:
    """Who issued a command (the token's `sub`) and the correlation id of the request."""

    sub: str
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))


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
        """Deterministic bytes: the same network always hashes the same."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def sha256(self) -> str:
        """Content hash of the canonical form."""
        return hashlib.sha256(self.canonical_json()).hexdigest()

    def problems(self) -> list[str]:
        """Every rule this network breaks, each naming the offending item."""
        node_ids = {n.id for n in self.nodes}
        found = [f"node {n.id}: coordinates not finite" for n in self.nodes
                 if not (math.isfinite(n.x) and math.isfinite(n.y))]
        if len(node_ids) != len(self.nodes):
            found.append("duplicate node ids")
        if len({link.id for link in self.links}) != len(self.links):
            found.append("duplicate link ids")
        for link in self.links:
            found.extend(link_problems(link, node_ids))
        for zone in self.zones:
            found.extend(zone_problems(zone, node_ids))
        return found

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


def link_problems(link: Link, node_ids: set[int]) -> list[str]:
    """Rules a single link must satisfy."""
    where = f"link {link.id}"
    found = [f"{where}: unknown node {n}" for n in (link.from_node, link.to_node)
             if n not in node_ids]
    numbers = {"capacity": link.capacity, "length": link.length,
               "free_flow_time": link.free_flow_time, "b": link.b, "power": link.power,
               "toll": link.toll, "lanes": link.lanes}
    found += [f"{where}: {k} is not a finite number" for k, v in numbers.items()
              if not math.isfinite(v)]
    found += [f"{where}: {k} must not be negative" for k, v in numbers.items()
              if math.isfinite(v) and v < 0]
    if math.isfinite(link.capacity) and link.capacity == 0:
        found.append(f"{where}: capacity must be positive")
    return found


def zone_problems(zone: Zone, node_ids: set[int]) -> list[str]:
    """Rules a single zone must satisfy."""
    where = f"zone {zone.id}"
    found = [] if zone.centroid_node in node_ids else [
        f"{where}: unknown centroid node {zone.centroid_node}"]
    for name, value in (("population", zone.population), ("jobs", zone.jobs)):
        if not math.isfinite(value) or value < 0:
            found.append(f"{where}: {name} must be a finite, non-negative number")
    return found


def label_problem(kind: str, text: str, longest: int = 200) -> str | None:
    """Why `text` cannot be a human-readable name (None when it can)."""
    if not text.strip() or len(text) > longest:
        return f"a {kind} name must be 1 to {longest} characters"
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        return f"a {kind} name must not contain control characters"
    return None


def tenant_uuid(tenant_id: str) -> uuid.UUID:
    """The Tenant aggregate id is derived from its name, so a name is registered once."""
    return uuid.uuid5(CARTOLOG_NAMESPACE, f"tenant:{tenant_id}")


def plain(value: Any) -> Any:
    """A dataclass value as JSON-compatible dicts and lists."""
    return json.loads(json.dumps(asdict(value)))
