"""Geometry as EWKT text (SRID 4326), built from plain coordinates: exact and repeatable.

A shape with a position outside WGS84 (possible only in events stored before the domain
checked positions) has no geometry: PostGIS would store it, but every tile query that
transforms it would fail (decision 0010)."""

from __future__ import annotations

import math
from collections.abc import Sequence

SRID = 4326
Coordinates = Sequence[Sequence[float]]


def _pair(coordinate: Sequence[float]) -> str:
    return f"{float(coordinate[0])!r} {float(coordinate[1])!r}"


def in_wgs84(coordinate: Sequence[float]) -> bool:
    """A finite longitude -180..180 and latitude -90..90."""
    lon, lat = float(coordinate[0]), float(coordinate[1])
    return math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90


def point(x: float, y: float) -> str | None:
    """A POINT, or None outside WGS84."""
    if not in_wgs84((x, y)):
        return None
    return f"SRID={SRID};POINT({float(x)!r} {float(y)!r})"


def line(coordinates: Coordinates) -> str | None:
    """A LINESTRING, or None with fewer than two coordinates or one outside WGS84."""
    if len(coordinates) < 2 or not all(in_wgs84(c) for c in coordinates):
        return None
    return f"SRID={SRID};LINESTRING({','.join(_pair(c) for c in coordinates)})"


def multipolygon(rings: Sequence[Coordinates]) -> str | None:
    """A MULTIPOLYGON of one polygon (outer ring, then holes); rings are closed if open.

    None when the outer ring has fewer than three distinct corners."""
    closed = [[*list(ring), ring[0]] if list(ring[0]) != list(ring[-1]) else list(ring)
              for ring in rings if len(ring) > 0]
    if not closed or len(closed[0]) < 4 or not all(in_wgs84(c) for r in closed for c in r):
        return None
    body = ",".join(f"({','.join(_pair(c) for c in ring)})" for ring in closed)
    return f"SRID={SRID};MULTIPOLYGON(({body}))"
