"""The resolved model input: network, zones, demand and parameters, as plain values.

Arrays are numpy; node and link references use the caller's integer ids. A ``Network`` is never
mutated: edits (see ``edits.py``) build a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from simulation_worker.model.errors import (
    InvalidLinkParameterError,
    InvalidParameterError,
    NegativeCapacityError,
    NegativeDemandError,
    NonFiniteValueError,
    UnknownNodeError,
    UnknownZoneError,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

LINK_FLOAT_FIELDS = (
    "capacity",
    "length",
    "free_flow_time",
    "bpr_b",
    "bpr_power",
    "toll",
    "speed_limit",
    "lanes",
)


@dataclass(frozen=True, eq=False)
class Network:
    """Nodes and directed links with BPR parameters.

    Link cost: ``free_flow_time * (1 + bpr_b * (flow / capacity) ** bpr_power)``.
    Nodes with an id below ``first_thru_node`` are zone centroids that no path may pass through.
    ``link_rows`` names where each link came from (for error messages); it is not model input.
    """

    node_ids: IntArray
    node_x: FloatArray
    node_y: FloatArray
    link_ids: IntArray
    link_from: IntArray
    link_to: IntArray
    capacity: FloatArray
    length: FloatArray
    free_flow_time: FloatArray
    bpr_b: FloatArray
    bpr_power: FloatArray
    toll: FloatArray
    speed_limit: FloatArray
    lanes: FloatArray
    link_type: IntArray
    link_open: BoolArray
    first_thru_node: int = 1
    link_rows: tuple[str, ...] = field(default=())

    @property
    def n_links(self) -> int:
        return int(self.link_ids.shape[0])

    @property
    def n_nodes(self) -> int:
        return int(self.node_ids.shape[0])

    def describe_link(self, index: int) -> str:
        """Human-readable name of link ``index``: id, endpoints and source row."""
        name = f"link {self.link_ids[index]} ({self.link_from[index]}->{self.link_to[index]})"
        if index < len(self.link_rows) and self.link_rows[index]:
            return f"{name} at {self.link_rows[index]}"
        return name


@dataclass(frozen=True)
class Zone:
    """A traffic analysis zone loaded and unloaded at its centroid node."""

    id: int
    centroid: int
    population: float
    jobs: float
    polygon: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True, eq=False)
class ExplicitDemand:
    """A fixed OD matrix in trips, rows and columns in the order of ``ModelInput.zones``."""

    trips: FloatArray


@dataclass(frozen=True)
class GravityDemand:
    """Doubly-constrained gravity model parameters.

    Productions are ``population * trip_rate``; attractions are jobs scaled to the same total.
    Deterrence is ``exp(-beta * cost)`` ("exponential") or ``cost ** -beta`` ("power").
    ``feedback_iterations`` > 0 re-runs distribution on congested costs, averaging OD matrices by
    the method of successive averages until their relative change is below
    ``feedback_tolerance``.
    """

    trip_rate: float = 1.0
    deterrence: Literal["exponential", "power"] = "exponential"
    beta: float = 0.1
    furness_tolerance: float = 1e-9
    max_furness_iterations: int = 10_000
    feedback_iterations: int = 0
    feedback_tolerance: float = 1e-3


@dataclass(frozen=True)
class CostParameters:
    """Generalized cost = time + toll_factor * toll + distance_factor * length."""

    toll_factor: float = 0.0
    distance_factor: float = 0.0


@dataclass(frozen=True)
class Units:
    """How many minutes one network time unit is, and how many km one length unit is."""

    time_minutes: float = 1.0
    length_km: float = 1.0


@dataclass(frozen=True)
class AssignmentSettings:
    """Stopping rule and algorithm of the user-equilibrium assignment.

    ``algorithm``: "b" (Dial's bush-based Algorithm B), "bfw" (bi-conjugate Frank-Wolfe) or
    "fw" (Frank-Wolfe). ``unreachable``: what becomes of explicit demand between zones no path
    joins (a zone whose connectors lead nowhere, a class banned from the only road): "refuse"
    the run naming them, or "drop" that demand, assign the rest and report what was dropped
    (decision 0147).
    """

    algorithm: Literal["b", "bfw", "fw"] = "b"
    relative_gap: float = 1e-5
    max_iterations: int = 1000
    unreachable: Literal["refuse", "drop"] = "refuse"


DEFAULT_COSTS = CostParameters()
DEFAULT_UNITS = Units()
DEFAULT_ASSIGNMENT = AssignmentSettings()


@dataclass(frozen=True, eq=False)
class ModelInput:
    """Everything that determines a model run's results."""

    network: Network
    zones: tuple[Zone, ...]
    demand: ExplicitDemand | GravityDemand
    costs: CostParameters = DEFAULT_COSTS
    units: Units = DEFAULT_UNITS
    assignment: AssignmentSettings = DEFAULT_ASSIGNMENT
    accessibility_minutes: float = 30.0


def make_network(
    link_from: IntArray,
    link_to: IntArray,
    capacity: FloatArray,
    length: FloatArray,
    free_flow_time: FloatArray,
    *,
    bpr_b: FloatArray | float = 0.15,
    bpr_power: FloatArray | float = 4.0,
    toll: FloatArray | float = 0.0,
    node_ids: IntArray | None = None,
    first_thru_node: int = 1,
) -> Network:
    """Build a network with default attributes: ids 1..n, open links, one lane, no coordinates."""
    m = len(link_from)

    def column(value: FloatArray | float) -> FloatArray:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), (m,)).copy()

    lf = np.asarray(link_from, dtype=np.int64)
    lt = np.asarray(link_to, dtype=np.int64)
    nodes = np.unique(np.concatenate([lf, lt])) if node_ids is None else node_ids
    nodes = np.asarray(nodes, dtype=np.int64)
    return Network(
        node_ids=nodes,
        node_x=np.full(len(nodes), np.nan),
        node_y=np.full(len(nodes), np.nan),
        link_ids=np.arange(1, m + 1, dtype=np.int64),
        link_from=lf,
        link_to=lt,
        capacity=column(capacity),
        length=column(length),
        free_flow_time=column(free_flow_time),
        bpr_b=column(bpr_b),
        bpr_power=column(bpr_power),
        toll=column(toll),
        speed_limit=column(0.0),
        lanes=column(1.0),
        link_type=np.ones(m, dtype=np.int64),
        link_open=np.ones(m, dtype=np.bool_),
        first_thru_node=first_thru_node,
    )


def validate_network(net: Network) -> None:
    """Raise a ``ModelInputError`` subclass naming the first offending link or node."""
    _check_lengths(net)
    _check_finite(net)
    _check_nodes(net)
    _check_link_parameters(net)


def _check_lengths(net: Network) -> None:
    m = net.n_links
    for name in (*LINK_FLOAT_FIELDS, "link_from", "link_to", "link_type", "link_open"):
        if getattr(net, name).shape != (m,):
            raise InvalidParameterError(f"network column {name} has not {m} entries")
    if len(np.unique(net.link_ids)) != m:
        raise InvalidParameterError("network link ids are not unique")
    if len(np.unique(net.node_ids)) != net.n_nodes:
        raise InvalidParameterError("network node ids are not unique")


def _check_finite(net: Network) -> None:
    for name in LINK_FLOAT_FIELDS:
        bad = np.flatnonzero(~np.isfinite(getattr(net, name)))
        if bad.size:
            raise NonFiniteValueError(f"{net.describe_link(int(bad[0]))}: {name} is not finite")


def _check_nodes(net: Network) -> None:
    for name in ("link_from", "link_to"):
        ends = getattr(net, name)
        bad = np.flatnonzero(~np.isin(ends, net.node_ids))
        if bad.size:
            i = int(bad[0])
            raise UnknownNodeError(f"{net.describe_link(i)}: unknown node {ends[i]}")


def _check_link_parameters(net: Network) -> None:
    bad = np.flatnonzero((net.capacity < 0) | ((net.capacity == 0) & (net.bpr_b > 0)))
    if bad.size:
        i = int(bad[0])
        raise NegativeCapacityError(
            f"{net.describe_link(i)}: capacity {net.capacity[i]} must be positive"
        )
    for name in ("free_flow_time", "length", "bpr_b", "bpr_power", "toll", "lanes"):
        values = getattr(net, name)
        bad = np.flatnonzero(values < 0)
        if bad.size:
            i = int(bad[0])
            raise InvalidLinkParameterError(
                f"{net.describe_link(i)}: {name} {values[i]} is negative"
            )


def validate_costs(costs: CostParameters) -> None:
    """Cost factors are finite and >= 0: with tolls and lengths >= 0, no link then costs less
    than its travel time, and shortest paths never meet a negative cost."""
    for name, value in (("toll factor", costs.toll_factor),
                        ("distance factor", costs.distance_factor)):
        check_factor(name, value)


def check_factor(name: str, value: float) -> None:
    """``InvalidParameterError`` unless ``value`` is a finite number >= 0."""
    if not (np.isfinite(value) and value >= 0):
        raise InvalidParameterError(f"{name} {value} must be a finite number >= 0")


def validate_zones(net: Network, zones: tuple[Zone, ...]) -> None:
    """Check zone ids are unique, centroids exist, and population and jobs are valid."""
    ids = [z.id for z in zones]
    if len(set(ids)) != len(ids):
        raise UnknownZoneError("zone ids are not unique")
    known = set(net.node_ids.tolist())
    for zone in zones:
        if zone.centroid not in known:
            raise UnknownNodeError(f"zone {zone.id}: unknown centroid node {zone.centroid}")
        for name in ("population", "jobs"):
            value = getattr(zone, name)
            if not np.isfinite(value):
                raise NonFiniteValueError(f"zone {zone.id}: {name} is not finite")
            if value < 0:
                raise NegativeDemandError(f"zone {zone.id}: {name} {value} is negative")


def validate_trips(trips: FloatArray, zones: tuple[Zone, ...]) -> None:
    """Check an OD matrix is square over the zones, finite and non-negative."""
    n = len(zones)
    if trips.shape != (n, n):
        raise InvalidParameterError(f"OD matrix shape {trips.shape} does not match {n} zones")
    bad = np.argwhere(~np.isfinite(trips))
    if bad.size:
        o, d = bad[0]
        raise NonFiniteValueError(
            f"OD matrix row origin {zones[o].id}, destination {zones[d].id}: not finite"
        )
    bad = np.argwhere(trips < 0)
    if bad.size:
        o, d = bad[0]
        raise NegativeDemandError(
            f"OD matrix row origin {zones[o].id}, destination {zones[d].id}: "
            f"negative demand {trips[o, d]}"
        )
