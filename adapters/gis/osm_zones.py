"""Zones for a network that came without any: a grid of hexagons (pointy-top, `width_km`
across flats) over its nodes. A hexagon holding at least one node becomes a zone, attached
to the node nearest its centre. Until a planner sets real figures, population and jobs
follow the road length whose links start in the hexagon: 200 residents and 100 jobs per km."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from domain.values import Coordinate, Link, Node, Zone

RESIDENTS_PER_KM = 200.0
JOBS_PER_KM = 100.0
KM_PER_DEGREE_LAT = 110.574
KM_PER_DEGREE_LON = 111.320


class LocalPlane:
    """An equirectangular plane in km around a reference point (fine at city scale)."""

    def __init__(self, lon: float, lat: float) -> None:
        self.lon, self.lat = lon, lat
        self.kx = KM_PER_DEGREE_LON * math.cos(math.radians(lat))

    def to_km(self, lon: float, lat: float) -> tuple[float, float]:
        """Degrees to km east and north of the reference."""
        return (lon - self.lon) * self.kx, (lat - self.lat) * KM_PER_DEGREE_LAT

    def to_degrees(self, x: float, y: float) -> Coordinate:
        """Inverse of to_km."""
        return self.lon + x / self.kx, self.lat + y / KM_PER_DEGREE_LAT


def hexagon_zones(nodes: Sequence[Node], links: Sequence[Link], width_km: float
                  ) -> tuple[Zone, ...]:
    """One zone per occupied hexagon, numbered 1.. in grid order."""
    plane = LocalPlane(min(n.x for n in nodes), min(n.y for n in nodes))
    size = width_km / math.sqrt(3.0)
    cells: dict[tuple[int, int], list[Node]] = defaultdict(list)
    for node in nodes:
        cells[_cell(*plane.to_km(node.x, node.y), size)].append(node)
    road_km: dict[int, float] = defaultdict(float)
    for link in links:
        road_km[link.from_node] += link.length
    zones = []
    for number, cell in enumerate(sorted(cells), start=1):
        centre = _centre(cell, size)
        members = cells[cell]
        nearest = min(members, key=lambda n: math.dist(plane.to_km(n.x, n.y), centre))
        km = sum(road_km[n.id] for n in members)
        ring = tuple(plane.to_degrees(*corner) for corner in _corners(centre, size))
        zones.append(Zone(number, nearest.id, float(round(RESIDENTS_PER_KM * km)),
                          float(round(JOBS_PER_KM * km)), (ring,)))
    return tuple(zones)


def _cell(x: float, y: float, size: float) -> tuple[int, int]:
    """Axial coordinates of the pointy-top hexagon holding (x, y)."""
    q = (math.sqrt(3.0) / 3.0 * x - y / 3.0) / size
    r = (2.0 / 3.0 * y) / size
    return _round(q, r)


def _round(q: float, r: float) -> tuple[int, int]:
    s = -q - r
    rq, rr, rs = round(q), round(r), round(s)
    dq, dr, ds = abs(rq - q), abs(rr - r), abs(rs - s)
    if dq > dr and dq > ds:
        rq = -rr - rs
    elif dr > ds:
        rr = -rq - rs
    return int(rq), int(rr)


def _centre(cell: tuple[int, int], size: float) -> tuple[float, float]:
    q, r = cell
    return size * math.sqrt(3.0) * (q + r / 2.0), size * 1.5 * r


def _corners(centre: tuple[float, float], size: float) -> list[tuple[float, float]]:
    x, y = centre
    corners = [(x + size * math.cos(math.radians(60 * i - 30)),
                y + size * math.sin(math.radians(60 * i - 30))) for i in range(6)]
    return [*corners, corners[0]]
