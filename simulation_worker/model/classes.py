"""Vehicle classes: multi-class user equilibrium on total PCE flows.

Every class sees the same congested travel time t(X), where X is the sum over classes of PCE
times the class's vehicle flow, plus its own flow-independent cost
``(toll_factor * toll + distance_factor * length) / value_of_time``. Links of a type the class
may not use cost it infinity, so no path of that class uses them.

Two solvers, chosen by ``AssignmentSettings.algorithm``:

- ``"b"`` (default): multi-class Algorithm B, one bush per (origin, class)
  (``bush.py``, docs/decisions/0124, 0139); select-link is read off the final bushes
  (docs/decisions/0125). With one class of PCE 1 it performs the single-class Algorithm B's
  operations in the same order. Where the classes' fixed costs differ, the sweeps also
  exchange flow between the classes of an origin (``bush._exchange``, decision 0145).
- ``"fw"`` and ``"bfw"``: multi-class Frank-Wolfe (docs/decisions/0122). The step size is found
  by bisection on the directional derivative ``sum_k d_k . c_k(X + tau D)``; with one class, or
  classes of PCE 1 and equal costs, this is exactly the single-class Frank-Wolfe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from simulation_worker.model import assignment as single
from simulation_worker.model import bush
from simulation_worker.model.assignment import (
    Dropped,
    ProgressCallback,
    Stagnation,
    drop_unreached,
    unreached_demand,
)
from simulation_worker.model.compile_ahead import compile_kernels
from simulation_worker.model.costs import check_finite, link_costs
from simulation_worker.model.errors import (
    CostOverflowError,
    DisconnectedDemandError,
    ModelInputError,
)
from simulation_worker.model.graph import Graph, build_graph
from simulation_worker.model.lanes import lanes
from simulation_worker.model.memory import normal_pages
from simulation_worker.model.network import (
    AssignmentSettings,
    CostParameters,
    FloatArray,
    ModelInput,
    check_factor,
)
from simulation_worker.model.paths import (
    Trees,
    all_or_nothing,
    origins_with_demand,
    shortest_paths,
    zone_costs,
)
from simulation_worker.model.select_bushes import select_on_bushes
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
    stalled: bool = False
    # "fw" when a stalled Algorithm B handed over to Frank-Wolfe, "fw-no-gain" when that ended
    # no better and B's flows were kept
    fallback: str | None = None
    # per class with demand no path serves (unreachable="drop"): what was assigned and dropped
    dropped: dict[str, Dropped] = field(default_factory=dict)

    def assigned_trips(self, demand: dict[str, FloatArray]) -> dict[str, FloatArray]:
        """Each class's trips that were assigned: ``demand`` less what was dropped."""
        return {name: self.dropped[name].trips if name in self.dropped else trips
                for name, trips in demand.items()}


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
        if not (c.pce > 0 and c.value_of_time > 0) or not np.isfinite([c.pce,
                                                                       c.value_of_time]).all():
            raise ModelInputError(f"class {c.name!r}: PCE and value of time must be positive")
        check_factor(f"class {c.name!r}: toll factor", c.toll_factor)
        check_factor(f"class {c.name!r}: distance factor", c.distance_factor)
        if c.name not in demand:
            raise ModelInputError(f"class {c.name!r} has no demand matrix")


def assign_classes(model: ModelInput, demand: dict[str, FloatArray],
                   classes: tuple[VehicleClass, ...],
                   settings: AssignmentSettings | None = None,
                   selections: tuple[LinkSelection, ...] = (),
                   progress: ProgressCallback | None = None) -> ClassAssignment:
    """Multi-class user equilibrium of ``demand`` (class name to zones x zones trips), with
    the select-link analysis of ``selections`` when any are given; Algorithm B reports every
    iteration to ``progress``."""
    check_classes(classes, demand)
    check_selections(selections, model.network.n_links)
    chosen = settings or model.assignment
    graph = build_graph(model.network, model.zones, CostParameters())
    compile_kernels()
    prepared = tuple(_prepare(model, graph, c, demand[c.name]) for c in classes)
    dropped: dict[str, Dropped] = {}
    if chosen.unreachable == "drop":
        ids = [z.id for z in model.zones]
        pairs = [_drop_unreached(graph, c, ids) for c in prepared]
        prepared = tuple(c for c, _ in pairs)
        dropped = {c.spec.name: d for c, d in pairs if d.unassigned_pairs}
    result = _assigned(model, graph, prepared, chosen, selections, progress)
    return replace(result, dropped=dropped) if dropped else result


def _assigned(model: ModelInput, graph: Graph, prepared: tuple[_Class, ...],
              chosen: AssignmentSettings, selections: tuple[LinkSelection, ...],
              progress: ProgressCallback | None) -> ClassAssignment:
    if chosen.algorithm == "b":
        return _algorithm_b(model, graph, prepared, chosen, selections, progress)
    tracker = (SelectLinkTracker(graph, selections, tuple(c.spec.name for c in prepared))
               if selections else None)
    flows, iterations, gap = _frank_wolfe(graph, prepared, chosen, tracker,
                                          zone_ids=[z.id for z in model.zones])
    result = _result(model, graph, prepared, flows, iterations, gap, chosen.relative_gap)
    if tracker is None:
        return result
    return replace(result, select_link=tracker.result(model.network.n_links))


# The schedule of the multi-class sweeps (0124, 0139): two sweeps per bush, four more single
# sweeps once the gap is below 1e-3, a threshold that shrinks with the gap. The single-class
# schedule (more sweeps from 5e-2, a finer threshold: decision 0131) stalls Winnipeg with cars
# and PCE-2.5 trucks of equal costs near gap 1.2e-6.
_PASSES = 2
_FLOW_SWEEPS = 4
_SWEEP_GAP = 1e-3
_TARGET_SHARE = 0.1
_GAP_SHARE = 0.02
# Shortcuts refused by the longest-path rule that a re-shape checks for a cycle, per bush.
_CYCLE_CHECKS = 32
# Whether a sweep exchanges flow between the classes of an origin (decision 0145; False: as
# before it, for the bench's baseline).
EXCHANGE = True
# The stagnation window of the multi-class Algorithm B (``assignment.STALL_WINDOWS``): twice the
# single-class one, as an exchange-limited crawl still halves the gap in 40 iterations (0145).
STALL_RULE = "b-classes"


def _algorithm_b(model: ModelInput, graph: Graph, prepared: tuple[_Class, ...],
                 settings: AssignmentSettings, selections: tuple[LinkSelection, ...],
                 progress: ProgressCallback | None) -> ClassAssignment:
    """Multi-class Algorithm B from all-or-nothing flows at free-flow costs: the single-class
    kernels (``bush.py``) and schedule (``assignment.py``), with one bush per (class, origin)
    and costs per class (decision 0139)."""
    started = time.perf_counter()
    g = graph
    n_classes, m, n = len(prepared), g.n_links, g.n_nodes
    od = np.stack([c.od for c in prepared])
    blocks = [origins_with_demand(c.od) for c in prepared]  # each class's bushes in a row
    bounds = np.cumsum([0, *(len(b) for b in blocks)])
    origins = np.concatenate(blocks).astype(np.int32)
    count = len(origins)
    fixed = np.stack([np.where(c.banned, np.inf, g.fixed_cost + c.fixed) for c in prepared])
    bush_class = np.repeat(np.arange(n_classes, dtype=np.int32), np.diff(bounds))
    sequence = np.lexsort((bush_class, origins)).astype(np.int32)  # origin-major
    trips = np.concatenate([od[q][blocks[q]].sum(axis=1) for q in range(n_classes)])
    mates = _mates(origins, bush_class, n_classes if _costs_differ(fixed) else 0)
    cl = bush.Classes(bush_class, np.array([c.spec.pce for c in prepared]), fixed, sequence,
                      _CYCLE_CHECKS, bush.noise(trips), mates)
    with normal_pages():
        bushes = bush.bushes(count, n, m)
        # no shortest-path trees for the re-shapes: with several classes they stalled
        # Winnipeg with cars and trucks near 3e-5 (decision 0139)
        work = bush.scratch(min(lanes(), max(1, count)), n, count, m, trees=False,
                            classes=mates.shape[1])
    # the extra sweeps do not exchange (0145): the sweeps after each re-shape find what there
    # is to exchange, and exchanging in every sweep as well cost up to 40 % more time where
    # exchanges saved no iteration (Winnipeg with three tolled classes: 1.8 s against 1.3 s)
    plain = cl._replace(mates=np.empty((count, 0), dtype=np.int32))
    x, c, d = np.zeros(m), np.empty((n_classes, m)), np.empty(m)
    bush.sum_flows(bush.rows(bushes, 0, 0), g, x, c, d, cl)  # free-flow costs
    for q, spec in enumerate(prepared):
        reach = bush.init_bushes(g, blocks[q], od[q], c[q],
                                 bush.rows(bushes, bounds[q], bounds[q + 1]))
        _refuse_unreached(spec, blocks[q], reach, [z.id for z in model.zones])
    bush.sum_flows(bushes, g, x, c, d, cl)
    total_demand = float(od.sum())
    gap = single._FIRST_GAP if total_demand > 0 else 0.0  # no trips: nothing to assign
    spent = _spent(bushes, g, bounds, c)  # sum_k x_k . c_k at the current flows
    iteration = 0
    stagnation = Stagnation(settings.relative_gap, STALL_RULE)
    sweeps = 0
    stalled = False
    while total_demand > 0 and (iteration == 0 or (gap > settings.relative_gap
                                                   and iteration < settings.max_iterations)):
        threshold = spent / total_demand * max(_TARGET_SHARE * settings.relative_gap,
                                               _GAP_SHARE * gap)
        bush.reshape_then_shift(g, origins, bushes, x, c, d, _PASSES, threshold, work, cl)
        sweeps = single.extra_sweeps(stagnation.gaps, gap, sweeps, _FLOW_SWEEPS, _SWEEP_GAP)
        for _ in range(sweeps):  # no bush skipped
            bush.shift_flows(g, origins, bushes, x, c, d, 1, threshold, work, False, plain)
        bush.sum_flows(bushes, g, x, c, d, cl)
        iteration += 1
        spent = _spent(bushes, g, bounds, c)
        if iteration == 1 and single._unmeasured_first(settings):
            continue
        gap = _bush_gap(spent, g, blocks, od, c)
        if progress is not None:
            progress(iteration, gap, time.perf_counter() - started)
        if stagnation.stalled(gap):
            stalled = True
            break
    flows = _class_flows(bushes, g, bounds)
    tracker = None
    if selections:
        tracker = SelectLinkTracker(graph, selections, tuple(p.spec.name for p in prepared))
        bits, full = _selection_bits(tracker)
        matrices, link_flows = select_on_bushes(
            origins, cl.bush_class, g.zone_node, od, g.fwd_start, g.fwd_link, g.bwd_start,
            g.bwd_link, g.head, g.tail, bushes, bits, full, n_classes)
        for k in range(n_classes):  # a class without demand selects nothing, but is listed
            tracker.current[k] = (matrices[k], link_flows[k])
    fallback = None
    if stalled and iteration < settings.max_iterations:
        # as a stalled single-class B hands over to BFW (docs/decisions/0111): Frank-Wolfe
        # continues from the bushes' class flows, and the selections follow its steps; if it
        # ends no better, B's flows and selections are kept (as in decision 0135)
        b_flows, b_gap = flows, gap
        b_selected = list(tracker.current) if tracker is not None else []
        fallback = "fw"
        flows, iteration, gap = _frank_wolfe(graph, prepared, settings, tracker, flows,
                                             iteration)
        stalled = gap > settings.relative_gap
        if stalled and not gap < b_gap:
            flows, gap, fallback = b_flows, b_gap, single.FW_NO_GAIN
            if tracker is not None:
                tracker.current = b_selected
    result = _result(model, graph, prepared, flows, iteration, gap, settings.relative_gap)
    result = replace(result, stalled=stalled, fallback=fallback)
    if tracker is None:
        return result
    return replace(result, select_link=tracker.result(model.network.n_links))


def _costs_differ(fixed: FloatArray) -> bool:
    """Whether two classes' flow-independent costs differ on a link both may use: only then
    can an exchange between them lower what they pay (``bush._exchange``)."""
    if not EXCHANGE:
        return False
    for q in range(fixed.shape[0]):
        for r in range(q):
            both = np.isfinite(fixed[q]) & np.isfinite(fixed[r])
            if np.any(fixed[q][both] != fixed[r][both]):
                return True
    return False


def _mates(origins: NDArray[np.int32], bush_class: NDArray[np.int32],
           n_classes: int) -> NDArray[np.int32]:
    """Per bush and class, the bush of that class from the same origin, or -1 (none, or the
    bush's own class); no columns where ``n_classes`` is 0."""
    mates = np.full((len(origins), n_classes), -1, dtype=np.int32)
    if not n_classes:
        return mates
    by_origin: dict[int, list[int]] = {}
    for k, origin in enumerate(origins.tolist()):
        by_origin.setdefault(origin, []).append(k)
    for group in by_origin.values():
        for k in group:
            for other in group:
                if other != k:
                    mates[k, bush_class[other]] = other
    return mates


def _class_flows(bushes: Trees, g: Graph, bounds: NDArray[np.int64]) -> list[FloatArray]:
    """Vehicle flows per class (graph links)."""
    found = []
    for q in range(len(bounds) - 1):
        x, c, d = np.empty(g.n_links), np.empty((1, g.n_links)), np.empty(g.n_links)
        bush.sum_flows(bush.rows(bushes, bounds[q], bounds[q + 1]), g, x, c, d)
        found.append(x)
    return found


def _spent(bushes: Trees, g: Graph, bounds: NDArray[np.int64], c: FloatArray) -> float:
    """Total cost ``sum_k x_k . c_k`` (a class's flows are zero where it may not go)."""
    spent = 0.0
    for q, x in enumerate(_class_flows(bushes, g, bounds)):
        used = x > 0
        spent += float(x[used] @ c[q][used])
    return spent


def _bush_gap(spent: float, g: Graph, blocks: list[NDArray[np.int32]], od: FloatArray,
              c: FloatArray) -> float:
    """Relative gap over all classes (vehicle-weighted), ``spent`` being ``sum_k x_k . c_k``;
    the shortest-path trees are not kept (see ``_algorithm_b``)."""
    shortest = 0.0
    for q, origins in enumerate(blocks):
        if not len(origins):
            continue
        least = shortest_paths(g, origins, c[q])[0]
        demand = od[q][origins]
        shortest += float(np.sum(demand[demand > 0] * least[demand > 0]))
    return (spent - shortest) / spent if spent > 0 else 0.0


def _selection_bits(tracker: SelectLinkTracker) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Per selection, the state bit each graph link sets, and the state of a selected trip:
    one bit for an ``or`` set, one per distinct link for an ``and`` set."""
    member = tracker.member
    bits = np.zeros(member.shape, dtype=np.int32)
    full = np.zeros(member.shape[0], dtype=np.int32)
    for s in range(member.shape[0]):
        links = np.flatnonzero(member[s])
        if tracker.need[s] == 1:
            bits[s, links] = 1
            full[s] = 1
        else:
            bits[s, links] = 1 << np.arange(len(links), dtype=np.int32)
            # a selected link that is not on the graph (closed) can never be passed
            full[s] = (1 << int(tracker.need[s])) - 1
    return bits, full


def _prepare(model: ModelInput, graph: Graph, spec: VehicleClass, od: FloatArray) -> _Class:
    net = model.network
    fixed = (spec.toll_factor * net.toll + spec.distance_factor * net.length) / spec.value_of_time
    link_type = net.link_type[graph.link_index]
    banned = (np.zeros(graph.n_links, dtype=np.bool_) if spec.allowed_link_types is None
              else ~np.isin(link_type, np.array(spec.allowed_link_types, dtype=np.int64)))
    on_graph = np.where(banned, 0.0, fixed[graph.link_index])
    return _Class(spec, np.asarray(od, dtype=np.float64), on_graph, banned)


def _refuse_unreached(c: _Class, origins: NDArray[np.int32], reach: FloatArray,
                      ids: list[int]) -> None:
    """Raise ``DisconnectedDemandError`` when some of the class's demand from ``origins`` has
    no path (``reach`` infinite) on the link types it may use: how many OD pairs and trips,
    and the first pair by zone id."""
    found = unreached_demand(c.od, origins, np.isfinite(reach), ids)
    if found:
        raise DisconnectedDemandError(f"class {c.spec.name!r} on the link types it may use: "
                                      f"{found}{single.UNREACHABLE_HINT}")


def _drop_unreached(graph: Graph, c: _Class, ids: list[int]) -> tuple[_Class, Dropped]:
    """The class without its demand that has no path on the link types it may use."""
    origins = origins_with_demand(c.od)
    free = c.costs(link_costs(graph, np.zeros(graph.n_links)))
    reached = np.isfinite(zone_costs(graph, free, origins))
    dropped = drop_unreached(c.od, reached, origins, ids)
    return replace(c, od=dropped.trips), dropped


def _pce_total(prepared: tuple[_Class, ...], flows: list[FloatArray]) -> FloatArray:
    total = np.zeros(flows[0].shape[0])
    for c, x in zip(prepared, flows, strict=True):
        total += c.spec.pce * x
    return total


def _frank_wolfe(graph: Graph, prepared: tuple[_Class, ...], settings: AssignmentSettings,
                 tracker: SelectLinkTracker | None, start: list[FloatArray] | None = None,
                 done: int = 0, zone_ids: list[int] | None = None,
                 ) -> tuple[list[FloatArray], int, float]:
    """Frank-Wolfe from all-or-nothing flows, or from ``start`` after ``done`` iterations
    (the tracker then already holds the selections of ``start``). ``zone_ids`` name the zones
    of an OD pair without a path (default 1..n)."""
    free = link_costs(graph, np.zeros(graph.n_links))
    flows: list[FloatArray] = [] if start is None else list(start)
    for k, c in enumerate(prepared if start is None else ()):
        if tracker is not None:
            tracker.target(k, c.costs(free), c.od)
        loaded, shortest = all_or_nothing(graph, c.costs(free), c.od)
        if not np.isfinite(shortest):
            origins = origins_with_demand(c.od)
            ids = zone_ids or list(range(1, c.od.shape[0] + 1))
            _refuse_unreached(c, origins, zone_costs(graph, c.costs(free), origins), ids)
        flows.append(loaded)
    gap = np.inf
    for iteration in range(done + 1, settings.max_iterations + 1):
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
    try:
        check_finite(graph, pce_on_graph, times)
    except CostOverflowError as error:
        raise error.naming(model.network.describe_link(error.link)) from None

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
