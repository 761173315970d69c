"""Scenario edits: typed operations a tenant applies to a scenario."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.values import Link


@dataclass(frozen=True)
class SetZoneAttributes:
    """Set a zone's population and/or jobs."""

    zone_id: int
    population: float | None = None
    jobs: float | None = None


@dataclass(frozen=True)
class AddLink:
    """Add a new link between existing nodes."""

    link: Link


@dataclass(frozen=True)
class ModifyLink:
    """Change a link's capacity, free-flow time, speed, lanes or toll."""

    link_id: str
    capacity: float | None = None
    free_flow_time: float | None = None
    speed: float | None = None
    lanes: float | None = None
    toll: float | None = None


@dataclass(frozen=True)
class CloseLink:
    """Close a link to traffic."""

    link_id: str


@dataclass(frozen=True)
class ChangeDemandParameters:
    """Change the gravity model's parameters."""

    trip_rate: float | None = None
    deterrence: str | None = None
    beta: float | None = None


Edit = SetZoneAttributes | AddLink | ModifyLink | CloseLink | ChangeDemandParameters
DETERRENCE_FUNCTIONS = ("exponential", "power")


@dataclass(frozen=True)
class NetworkIndex:
    """What edit validation needs to know of a base network."""

    node_ids: frozenset[int]
    link_ids: frozenset[str]
    zone_ids: frozenset[int]
    # where each node is (longitude, latitude): an added link's line must join its nodes
    node_positions: Mapping[int, tuple[float, float]] = field(default_factory=dict)
