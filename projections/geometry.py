"""Geometry as EWKT text (SRID 4326), built from plain coordinates: exact and repeatable."""

from __future__ import annotations

from collections.abc import Sequence

SRID = 4326
Coordinates = Sequence[Sequence[float]]


def _pair(coordinate: Sequence[float]) -> str:
    return f"{float(coordinate[0])!r} {float(coordinate[1])!r}"


def point(x: float, y: float) -> str:
    """A POINT."""
    return f"SRID={SRID};POINT({float(x)!r} {float(y)!r})"


def line(coordinates: Coordinates) -> str | None:
    """A LINESTRING, or None with fewer than two coordinates."""
    if len(coordinates) < 2:
        return None
    return f"SRID={SRID};LINESTRING({','.join(_pair(c) for c in coordinates)})"


def multipolygon(rings: Sequence[Coordinates]) -> str | None:
    """A MULTIPOLYGON of one polygon (outer ring, then holes); rings are closed if open.

    None when the outer ring has fewer than three distinct corners."""
    closed = [[*list(ring), ring[0]] if list(ring[0]) != list(ring[-1]) else list(ring)
              for ring in rings if len(ring) > 0]
    if not closed or len(closed[0]) < 4:
        return None
    body = ",".join(f"({','.join(_pair(c) for c in ring)})" for ring in closed)
    return f"SRID={SRID};MULTIPOLYGON(({body}))"
