"""Scenario edits as plain dataclasses, and ``apply_edits`` to build the edited model input.

Edits apply in order; each returns a new ``ModelInput`` (the base is never mutated), so the
same edits on the same base always give the same input and the same ``content_hash``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from simulation_worker.model.errors import EditError, UnknownZoneError
from simulation_worker.model.network import (
    GravityDemand,
    ModelInput,
    Network,
    validate_network,
)


@dataclass(frozen=True)
class CloseLink:
    """Close a link: it carries no flow and no path uses it."""

    link_id: int


@dataclass(frozen=True)
class SetLinkCapacity:
    """Set a link's capacity (vehicles per assignment period, network units)."""

    link_id: int
    capacity: float


@dataclass(frozen=True)
class SetLinkSpeed:
    """Set a link's speed in km/h; free-flow time is rescaled by old/new speed, or computed
    from length when the old speed is unknown (0)."""

    link_id: int
    speed_kmh: float


@dataclass(frozen=True)
class SetLinkLanes:
    """Set a link's number of lanes; capacity scales in proportion to lanes."""

    link_id: int
    lanes: float


@dataclass(frozen=True)
class AddLink:
    """Add a directed link between two existing nodes, under a new link id."""

    link_id: int
    from_node: int
    to_node: int
    capacity: float
    length: float
    free_flow_time: float
    bpr_b: float = 0.15
    bpr_power: float = 4.0
    toll: float = 0.0
    speed_kmh: float = 0.0
    lanes: float = 1.0
    link_type: int = 1


@dataclass(frozen=True)
class SetZonePopulation:
    """Set a zone's population (drives gravity-model productions)."""

    zone_id: int
    population: float


@dataclass(frozen=True)
class SetZoneJobs:
    """Set a zone's jobs (gravity-model attractions, accessibility)."""

    zone_id: int
    jobs: float


@dataclass(frozen=True)
class SetDemandParameters:
    """Change gravity-model parameters; fields left as None keep their current value."""

    trip_rate: float | None = None
    beta: float | None = None
    deterrence: Literal["exponential", "power"] | None = None
    feedback_iterations: int | None = None


Edit = (
    CloseLink | SetLinkCapacity | SetLinkSpeed | SetLinkLanes | AddLink | SetZonePopulation
    | SetZoneJobs | SetDemandParameters
)


def apply_edits(base: ModelInput, edits: Sequence[Edit]) -> ModelInput:
    """Apply ``edits`` in order to ``base`` and return the edited, validated model input."""
    model = base
    for edit in edits:
        model = _apply(model, edit)
    validate_network(model.network)
    return model


def _apply(model: ModelInput, edit: Edit) -> ModelInput:
    if isinstance(edit, SetZonePopulation | SetZoneJobs):
        return _edit_zone(model, edit)
    if isinstance(edit, SetDemandParameters):
        return _edit_demand(model, edit)
    if isinstance(edit, AddLink):
        return replace(model, network=_add_link(model.network, edit))
    return replace(model, network=_edit_link(model, edit))


def _link_position(net: Network, link_id: int) -> int:
    where = np.flatnonzero(net.link_ids == link_id)
    if where.size == 0:
        raise EditError(f"no link with id {link_id}")
    return int(where[0])


def _edit_link(model: ModelInput,
               edit: CloseLink | SetLinkCapacity | SetLinkSpeed | SetLinkLanes) -> Network:
    net = model.network
    i = _link_position(net, edit.link_id)
    if isinstance(edit, CloseLink):
        return _with_value(net, "link_open", i, False)
    if isinstance(edit, SetLinkCapacity):
        return _with_value(net, "capacity", i, edit.capacity)
    if isinstance(edit, SetLinkLanes):
        if edit.lanes <= 0:
            raise EditError(f"link {edit.link_id}: lanes must be positive, got {edit.lanes}")
        scaled = net.capacity[i] * edit.lanes / net.lanes[i]
        return _with_value(_with_value(net, "lanes", i, edit.lanes), "capacity", i, scaled)
    return _set_speed(model, net, i, edit.speed_kmh)


def _set_speed(model: ModelInput, net: Network, i: int, speed: float) -> Network:
    if not speed > 0:
        raise EditError(f"link {net.link_ids[i]}: speed must be positive, got {speed}")
    old = net.speed_limit[i]
    if old > 0:
        time = net.free_flow_time[i] * old / speed
    else:
        hours = net.length[i] * model.units.length_km / speed
        time = hours * 60.0 / model.units.time_minutes
    return _with_value(_with_value(net, "speed_limit", i, speed), "free_flow_time", i, time)


def _with_value(net: Network, column: str, i: int, value: float | bool) -> Network:
    array = getattr(net, column).copy()
    array[i] = value
    return replace(net, **{column: array})


def _add_link(net: Network, edit: AddLink) -> Network:
    if (net.link_ids == edit.link_id).any():
        raise EditError(f"link id {edit.link_id} already exists")
    values = {
        "link_ids": edit.link_id, "link_from": edit.from_node, "link_to": edit.to_node,
        "capacity": edit.capacity, "length": edit.length,
        "free_flow_time": edit.free_flow_time, "bpr_b": edit.bpr_b,
        "bpr_power": edit.bpr_power, "toll": edit.toll, "speed_limit": edit.speed_kmh,
        "lanes": edit.lanes, "link_type": edit.link_type, "link_open": True,
    }
    columns: dict[str, object] = {
        name: np.append(getattr(net, name), np.array([v], dtype=getattr(net, name).dtype))
        for name, v in values.items()
    }
    columns["link_rows"] = (*net.link_rows, f"added link {edit.link_id}") if net.link_rows else ()
    return replace(net, **columns)  # type: ignore[arg-type]


def _edit_zone(model: ModelInput, edit: SetZonePopulation | SetZoneJobs) -> ModelInput:
    ids = [z.id for z in model.zones]
    if edit.zone_id not in ids:
        raise UnknownZoneError(f"no zone with id {edit.zone_id}")
    i = ids.index(edit.zone_id)
    zone = model.zones[i]
    changed = (replace(zone, population=edit.population) if isinstance(edit, SetZonePopulation)
               else replace(zone, jobs=edit.jobs))
    return replace(model, zones=(*model.zones[:i], changed, *model.zones[i + 1 :]))


def _edit_demand(model: ModelInput, edit: SetDemandParameters) -> ModelInput:
    if not isinstance(model.demand, GravityDemand):
        raise EditError("demand parameters apply to a gravity model, not an explicit OD matrix")
    changes = {k: v for k, v in vars(edit).items() if v is not None}
    return replace(model, demand=replace(model.demand, **changes))
