"""What a drivable OpenStreetMap way means for the model: defaults per `highway` class and
how `oneway`, `lanes` and `maxspeed` tags override them (docs/decisions/0601)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from domain.rules import LINK_TYPE_NAMES


@dataclass(frozen=True)
class RoadClass:
    """Defaults of one highway class: capacity per lane (veh/h), speed (km/h), lanes per
    direction, and the link_type number links of this class get."""

    capacity_per_lane: float
    speed_kmh: float
    lanes: float
    link_type: int


# capacity per lane (veh/h), speed (km/h), lanes per direction; the link type is the one
# rules.LINK_TYPE_NAMES gives the class's name, so imports that name it agree (0715)
_DEFAULTS: dict[str, tuple[float, float, float]] = {
    "motorway": (2000.0, 100.0, 2.0),
    "trunk": (1800.0, 80.0, 2.0),
    "primary": (1200.0, 60.0, 1.0),
    "secondary": (1000.0, 50.0, 1.0),
    "tertiary": (800.0, 40.0, 1.0),
    "unclassified": (600.0, 30.0, 1.0),
    "residential": (500.0, 30.0, 1.0),
    "living_street": (300.0, 10.0, 1.0),
    "service": (400.0, 20.0, 1.0),
    "road": (600.0, 30.0, 1.0),
    "motorway_link": (1500.0, 60.0, 1.0),
    "trunk_link": (1300.0, 50.0, 1.0),
    "primary_link": (1000.0, 40.0, 1.0),
    "secondary_link": (800.0, 40.0, 1.0),
    "tertiary_link": (700.0, 30.0, 1.0),
}
ROAD_CLASSES: dict[str, RoadClass] = {name: RoadClass(*defaults, LINK_TYPE_NAMES[name])
                                      for name, defaults in _DEFAULTS.items()}
NO_CARS = {"no", "private"}
FORWARD_ONLY = {"yes", "true", "1"}
BACKWARD_ONLY = {"-1", "reverse"}
IMPLIED_ONEWAY = {"motorway"}
SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh)?\s*$")


@dataclass(frozen=True)
class Direction:
    """One direction of a way: its lanes, capacity (veh/h) and speed (km/h)."""

    lanes: float
    capacity: float
    speed_kmh: float


def road_class(tags: Mapping[str, str]) -> RoadClass | None:
    """The class of a way cars may use, or None."""
    found = ROAD_CLASSES.get(tags.get("highway", ""))
    if found is None or tags.get("area") == "yes":
        return None
    if tags.get("access") in NO_CARS or tags.get("motor_vehicle") in NO_CARS \
            or tags.get("motorcar") in NO_CARS:
        return None
    return found


def directions(tags: Mapping[str, str], road: RoadClass) -> tuple[bool, bool]:
    """(forward, backward): which ways along the node order traffic may go."""
    oneway = tags.get("oneway", "").strip().lower()
    if oneway in FORWARD_ONLY:
        return True, False
    if oneway in BACKWARD_ONLY:
        return False, True
    if oneway == "no":
        return True, True
    implied = tags.get("junction") in ("roundabout", "circular") \
        or tags.get("highway") in IMPLIED_ONEWAY
    return True, not implied


def direction(tags: Mapping[str, str], road: RoadClass, forward: bool, both: bool
              ) -> Direction:
    """Lanes, capacity and speed of one direction: tags where usable, else the defaults."""
    lanes = _lanes(tags, road, forward, both)
    speed = _speed(tags.get("maxspeed:forward" if forward else "maxspeed:backward")) \
        or _speed(tags.get("maxspeed")) or road.speed_kmh
    return Direction(lanes, lanes * road.capacity_per_lane, speed)


def _lanes(tags: Mapping[str, str], road: RoadClass, forward: bool, both: bool) -> float:
    own = _positive(tags.get("lanes:forward" if forward else "lanes:backward"))
    if own is not None:
        return own
    total = _positive(tags.get("lanes"))
    if total is None:
        return road.lanes
    return max(1.0, math.floor(total / 2)) if both else total


def _positive(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value > 0 else None


def _speed(raw: str | None) -> float | None:
    match = SPEED.match(raw or "")
    if match is None or float(match.group(1)) <= 0:
        return None
    value = float(match.group(1))
    return value * 1.609344 if match.group(2) == "mph" else value
