"""Vehicle classes: multi-class user equilibrium on total PCE flows (Frank-Wolfe).

Every class sees the same congested travel time t(X), where X is the sum over classes of PCE
times the class's vehicle flow, plus its own flow-independent cost
``(toll_factor * toll + distance_factor * length) / value_of_time``. Links of a type the class
may not use cost it infinity, so no path of that class uses them. The step size is found by
bisection on the directional derivative ``sum_k d_k . c_k(X + tau D)``; with one class, or
classes of PCE 1 and equal costs, this is exactly the single-class Frank-Wolfe.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from simulation_worker.model.costs import link_costs
from simulation_worker.model.errors import ModelInputError
from simulation_worker.model.graph import Graph, build_graph
from simulation_worker.model.network import (
    AssignmentSettings,
    CostParameters,
    FloatArray,
    ModelInput,
)
from simulation_worker.model.paths import all_or_nothing
from simulation_worker.model.select_link import (
    LinkSelection,
    SelectLinkResult,
    SelectLinkTracker,
    check_selections,
)

_BISECTIONS = 60


@dataclass(frozen=True)
class VehicleClass:
    """A class of vehicles: its PCE, value of time, cost factors and the link types it may use
    (None: every type)."""

    name: str
    pce: float = 1.0
    value_of_time: float = 1.0
    toll_factor: float = 0.0
    distance_factor: float = 0.0
    allowed_link_types: tuple[int, ...] | None = None


@dataclass(frozen=True, eq=False)
class ClassAssignment:
    """Per-class vehicle flows (network link order), the total PCE flow and how it ended."""

    class_flows: dict[str, FloatArray]
    pce_flows: FloatArray
    link_times: FloatArray
    class_costs: dict[str, FloatArray]
    relative_gap: float
    iterations: int
    converged: bool
    select_link: SelectLinkResult | None = None


@dataclass(frozen=True, eq=False)
class _Class:
    spec: VehicleClass
    od: FloatArray
    fixed: FloatArray  # per graph link, 0 on banned links
    banned: NDArray[np.bool_]

    def costs(self, times: FloatArray) -> FloatArray:
        return np.where(self.banned, np.inf, times + self.fixed)


def check_classes(classes: tuple[VehicleClass, ...], demand: dict[str, FloatArray]) -> None:
    """Every class named once, with positive PCE and value of time, and a demand matrix."""
    names = [c.name for c in classes]
    if not classes or len(set(names)) != len(names):
        raise ModelInputError("declare at least one vehicle class, each name once")
    for c in classes:
        if not (c.pce > 0 and c.value_of_time > 0) or not np.isfinite([c.pce, c.value_of_time,
                                                                       c.toll_factor,
                                                                       c.distance_factor]).all():
            raise ModelInputError(f"class {c.name!r}: PCE and value of time must be positive")
        if c.name not in demand:
            raise ModelInputError(f"class {c.name!r} has no demand matrix")


def assign_classes(model: ModelInput, demand: dict[str, FloatArray],
                   classes: tuple[VehicleClass, ...],
                   settings: AssignmentSettings | None = None,
                   selections: tuple[LinkSelection, ...] = ()) -> ClassAssignment:
    """Multi-class user equilibrium of ``demand`` (class name to zones x zones trips), with
    the select-link analysis of ``selections`` when any are given."""
    check_classes(classes, demand)
    check_selections(selections, model.network.n_links)
    chosen = settings or model.assignment
    graph = build_graph(model.network, model.zones, CostParameters())
    prepared = tuple(_prepare(model, graph, c, demand[c.name]) for c in classes)
    tracker = (SelectLinkTracker(graph, selections, tuple(c.name for c in classes))
               if selections else None)
    flows, iterations, gap = _frank_wolfe(graph, prepared, chosen, tracker)
    result = _result(model, graph, prepared, flows, iterations, gap, chosen.relative_gap)
    if tracker is None:
        return result
    return replace(result, select_link=tracker.result(model.network.n_links))


def _prepare(model: ModelInput, graph: Graph, spec: VehicleClass, od: FloatArray) -> _Class:
    net = model.network
    fixed = (spec.toll_factor * net.toll + spec.distance_factor * net.length) / spec.value_of_time
    link_type = net.link_type[graph.link_index]
    banned = (np.zeros(graph.n_links, dtype=np.bool_) if spec.allowed_link_types is None
              else ~np.isin(link_type, np.array(spec.allowed_link_types, dtype=np.int64)))
    on_graph = np.where(banned, 0.0, fixed[graph.link_index])
    return _Class(spec, np.asarray(od, dtype=np.float64), on_graph, banned)


def _pce_total(prepared: tuple[_Class, ...], flows: list[FloatArray]) -> FloatArray:
    total = np.zeros(flows[0].shape[0])
    for c, x in zip(prepared, flows, strict=True):
        total += c.spec.pce * x
    return total


def _frank_wolfe(graph: Graph, prepared: tuple[_Class, ...], settings: AssignmentSettings,
                 tracker: SelectLinkTracker | None) -> tuple[list[FloatArray], int, float]:
    free = link_costs(graph, np.zeros(graph.n_links))
    flows: list[FloatArray] = []
    for k, c in enumerate(prepared):
        if tracker is not None:
            tracker.target(k, c.costs(free), c.od)
        loaded, shortest = all_or_nothing(graph, c.costs(free), c.od)
        if not np.isfinite(shortest):
            raise ModelInputError(f"class {c.spec.name!r}: some of its demand has no path on "
                                  "the link types it may use")
        flows.append(loaded)
    gap = np.inf
    for iteration in range(1, settings.max_iterations + 1):
        times = link_costs(graph, _pce_total(prepared, flows))
        targets, gap = _targets(graph, prepared, flows, times)
        if gap <= settings.relative_gap:
            return flows, iteration, gap
        directions = [y - x for x, y in zip(flows, targets, strict=True)]
        tau = _line_search(graph, prepared, flows, directions)
        flows = [x + tau * d for x, d in zip(flows, directions, strict=True)]
        if tracker is not None:
            for k, c in enumerate(prepared):
                tracker.target(k, c.costs(times), c.od)
            tracker.advance(tau)
    return flows, settings.max_iterations, gap


def _targets(graph: Graph, prepared: tuple[_Class, ...], flows: list[FloatArray],
             times: FloatArray) -> tuple[list[FloatArray], float]:
    targets: list[FloatArray] = []
    total = shortest = 0.0
    for c, x in zip(prepared, flows, strict=True):
        y, spt = all_or_nothing(graph, c.costs(times), c.od)
        targets.append(y)
        total += float(x @ (times + c.fixed))
        shortest += spt
    return targets, (total - shortest) / total if total > 0 else 0.0


def _line_search(graph: Graph, prepared: tuple[_Class, ...], flows: list[FloatArray],
                 directions: list[FloatArray]) -> float:
    vehicles = np.sum(directions, axis=0)
    fixed_part = sum(float(d @ c.fixed) for c, d in zip(prepared, directions, strict=True))
    base = _pce_total(prepared, flows)
    pce_direction = _pce_total(prepared, directions)

    def slope(tau: float) -> float:
        return float(vehicles @ link_costs(graph, base + tau * pce_direction)) + fixed_part

    if slope(1.0) <= 0.0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if slope(mid) > 0.0 else (mid, hi)
    return 0.5 * (lo + hi)


def _result(model: ModelInput, graph: Graph, prepared: tuple[_Class, ...],
            flows: list[FloatArray], iterations: int, gap: float,
            target: float) -> ClassAssignment:
    n = model.network.n_links
    pce_on_graph = _pce_total(prepared, flows)
    times = link_costs(graph, pce_on_graph)

    def spread(values: FloatArray, fill: float) -> FloatArray:
        out = np.full(n, fill)
        out[graph.link_index] = values
        return out

    return ClassAssignment(
        class_flows={c.spec.name: spread(x, 0.0) for c, x in zip(prepared, flows, strict=True)},
        pce_flows=spread(pce_on_graph, 0.0),
        link_times=spread(times, np.nan),
        class_costs={c.spec.name: spread(c.costs(times), np.nan) for c in prepared},
        relative_gap=float(gap), iterations=iterations, converged=bool(gap <= target))


def class_indicators(model: ModelInput, result: ClassAssignment, demand: dict[str, FloatArray]
                     ) -> dict[str, dict[str, float]]:
    """Per class: trips, vehicle-km and vehicle-hours at the equilibrium."""
    units = model.units
    found: dict[str, dict[str, float]] = {}
    times = np.nan_to_num(result.link_times, nan=0.0)
    for name, flows in result.class_flows.items():
        found[name] = {
            "trips": float(np.sum(demand[name])),
            "vehicle_km": float(flows @ model.network.length) * units.length_km,
            "vehicle_hours": float(flows @ times) * units.time_minutes / 60.0,
        }
    return found
