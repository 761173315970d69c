"""Static user-equilibrium traffic assignment with BPR costs.

``assign`` runs Algorithm B (default), bi-conjugate Frank-Wolfe or Frank-Wolfe to a requested
relative gap, (total cost - total shortest-path cost) / total cost, measured at the end of each
iteration with shortest paths that honour first-thru-node.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulation_worker.model import bush, frank_wolfe
from simulation_worker.model.compile_ahead import compile_kernels
from simulation_worker.model.contract import contract
from simulation_worker.model.costs import beckmann_objective, check_finite, link_costs
from simulation_worker.model.errors import DisconnectedDemandError, InvalidParameterError
from simulation_worker.model.graph import Graph
from simulation_worker.model.lanes import lanes
from simulation_worker.model.memory import normal_pages
from simulation_worker.model.network import DEFAULT_ASSIGNMENT, AssignmentSettings, FloatArray
from simulation_worker.model.paths import (
    gap_of,
    origins_with_demand,
    relative_gap,
    shortest_paths,
    zone_costs,
)

ProgressCallback = Callable[[int, float, float], None]
"""Called after every iteration with (iteration, relative_gap, elapsed_seconds)."""

ALGORITHMS = ("b", "bfw", "fw")
NO_GAIN = "bfw-no-gain"
"""``fallback`` when bi-conjugate Frank-Wolfe ran after a stalled Algorithm B and ended no
better: the result holds Algorithm B's flows (docs/decisions/0135)."""
FW_NO_GAIN = "fw-no-gain"
"""The same for the multi-class Algorithm B, whose fallback is Frank-Wolfe (``classes.py``)."""
CONVERGED, STALLED, ITERATION_LIMIT = "converged", "stalled", "iteration_limit"


@dataclass(frozen=True, eq=False)
class AssignmentResult:
    """Equilibrium link flows and costs (in graph link order) and convergence figures."""

    flows: FloatArray
    costs: FloatArray
    relative_gap: float
    objective: float
    iterations: int
    converged: bool
    seconds: float
    outcome: str = CONVERGED
    fallback: str | None = None
    skims: PathSkims | None = None

    @property
    def message(self) -> str:
        """One line: how the run ended, e.g. "stalled at gap 4.20e-03 after 45 iterations"."""
        return describe(self.outcome, self.relative_gap, self.iterations, self.fallback)


@dataclass(frozen=True, eq=False)
class PathSkims:
    """Least-cost paths at the final costs, kept from the last gap measurement so the outputs
    need no further shortest-path pass: for the zones ``origins`` (rows), the least cost to
    every zone and the congested time (cost less the fixed part) along those paths."""

    origins: NDArray[np.int32]
    cost: FloatArray
    time: FloatArray


def describe(outcome: str, gap: float, iterations: int, fallback: str | None) -> str:
    """The one-line account of an assignment's end used by the CLI and the service."""
    head = {CONVERGED: "converged", STALLED: "stalled",
            ITERATION_LIMIT: "iteration limit reached"}[outcome]
    text = f"{head} at gap {gap:.2e} after {iterations} iterations"
    if fallback in (NO_GAIN, FW_NO_GAIN):
        name = "bi-conjugate Frank-Wolfe" if fallback == NO_GAIN else "Frank-Wolfe"
        text += (f" (Algorithm B stalled; {name} from its flows did not improve"
                 " them: Algorithm B's flows kept)")
    elif fallback is not None:
        text += f" (Algorithm B stalled; continued with {fallback} from its flows)"
    return text


def assign(
    graph: Graph,
    od: FloatArray,
    settings: AssignmentSettings = DEFAULT_ASSIGNMENT,
    progress: ProgressCallback | None = None,
    zone_ids: list[int] | None = None,
) -> AssignmentResult:
    """Assign the OD matrix ``od`` (zones x zones, trips) to user equilibrium."""
    _check_settings(settings)
    compile_kernels()
    started = time.perf_counter()
    if settings.algorithm != "b":  # Algorithm B checks on its initial shortest-path trees
        check_connected(graph, od, zone_ids)
    report = progress if progress is not None else _no_progress
    fallback = None
    skims: PathSkims | None = None
    if settings.algorithm == "b":
        flows, its, stalled, skims = _algorithm_b(graph, od, settings, report, started,
                                                  zone_ids)
        costs, gap = _measured(graph, flows, od, skims)
        if stalled:
            b_flows, b_skims, b_costs, b_gap = flows, skims, costs, gap
            fallback = "bfw"
            flows, its, stalled = frank_wolfe.solve(
                graph, od, settings, report, started,
                Stagnation(settings.relative_gap, "bfw").stalled, start=flows, done=its,
                algorithm="bfw")
            skims = None
            costs, gap = _measured(graph, flows, od, skims)
            if not gap < b_gap:  # B's flows are kept: a stalled run, whatever stopped BFW (0135)
                flows, skims, costs, gap = b_flows, b_skims, b_costs, b_gap
                fallback, stalled = NO_GAIN, True
    else:
        flows, its, stalled = frank_wolfe.solve(
            graph, od, settings, report, started,
            Stagnation(settings.relative_gap, settings.algorithm).stalled)
        costs, gap = _measured(graph, flows, od, skims)
    converged = gap <= settings.relative_gap
    return AssignmentResult(
        flows=flows,
        costs=costs,
        relative_gap=gap,
        objective=beckmann_objective(graph, flows),
        iterations=its,
        converged=converged,
        seconds=time.perf_counter() - started,
        outcome=CONVERGED if converged else STALLED if stalled else ITERATION_LIMIT,
        fallback=fallback,
        skims=skims,
    )


def _measured(graph: Graph, flows: FloatArray, od: FloatArray, skims: PathSkims | None
              ) -> tuple[FloatArray, float]:
    """Link costs and relative gap at ``flows``; with ``skims`` (Algorithm B's last gap pass,
    at these very flows and costs) without another shortest-path pass."""
    costs = link_costs(graph, flows)
    check_finite(graph, flows, costs)
    if skims is not None:
        return costs, gap_of(flows, costs, od[skims.origins], skims.cost)
    return costs, relative_gap(graph, flows, costs, od)


def _no_progress(iteration: int, gap: float, elapsed: float) -> None:
    return None


def _check_settings(settings: AssignmentSettings) -> None:
    if settings.algorithm not in ALGORITHMS:
        raise InvalidParameterError(
            f"unknown algorithm {settings.algorithm!r}; choose one of {', '.join(ALGORITHMS)}"
        )
    if not settings.relative_gap > 0 or not np.isfinite(settings.relative_gap):
        raise InvalidParameterError(
            f"relative gap {settings.relative_gap} must be a positive finite number")
    if settings.max_iterations < 1:
        raise InvalidParameterError(f"max iterations {settings.max_iterations} must be >= 1")


def check_connected(graph: Graph, od: FloatArray, zone_ids: list[int] | None = None) -> None:
    """Raise ``DisconnectedDemandError`` naming the first OD pair with demand but no path."""
    reached, origins = reachable(graph, od)
    _refuse_unreached(od, origins, reached, zone_ids)


def _refuse_unreached(od: FloatArray, origins: NDArray[np.int32], reached: NDArray[np.bool_],
                      zone_ids: list[int] | None) -> None:
    names = zone_ids if zone_ids is not None else list(range(1, od.shape[0] + 1))
    found = unreached_demand(od, origins, reached, names)
    if found:
        raise DisconnectedDemandError(found + UNREACHABLE_HINT)


@dataclass(frozen=True, eq=False)
class Dropped:
    """Demand dropped because no path joins its zones (``unreachable="drop"``): the matrix
    that is assigned, and what was taken out of it."""

    trips: FloatArray
    unassigned_trips: float = 0.0
    unassigned_pairs: int = 0
    note: str | None = None


def drop_unreached(od: FloatArray, reached: NDArray[np.bool_], origins: NDArray[np.int32],
                   names: list[int]) -> Dropped:
    """``od`` without the demand of the pairs ``reached`` (rows: ``origins``) says no path
    joins, and a description of it."""
    note = unreached_demand(od, origins, reached, names)
    if note is None:
        return Dropped(od)
    kept = od.copy()
    rows = kept[origins]
    cut = (rows > 0) & ~reached
    trips = float(rows[cut].sum())
    rows[cut] = 0.0
    kept[origins] = rows
    return Dropped(kept, trips, int(cut.sum()), note)


def reachable(graph: Graph, od: FloatArray) -> tuple[NDArray[np.bool_], NDArray[np.int32]]:
    """Which zones each origin with demand reaches at free-flow costs, and those origins."""
    origins = origins_with_demand(od)
    free = link_costs(graph, np.zeros(graph.n_links))
    return np.isfinite(zone_costs(graph, free, origins)), origins


def unreached_demand(od: FloatArray, origins: NDArray[np.int32], reached: NDArray[np.bool_],
                     names: list[int]) -> str | None:
    """What of the demand from `origins` has no path (`reached` false), or None: how many OD
    pairs and trips, the first pair, and the zones they leave from or go to most often (a
    real network's usual fault is a zone whose connectors lead nowhere)."""
    unreached = (od[origins] > 0) & ~reached
    if not unreached.any():
        return None
    pairs = np.argwhere(unreached)
    first_o, first_d = names[int(origins[pairs[0][0]])], names[int(pairs[0][1])]
    trips = float(od[origins][unreached].sum())
    by_destination = np.bincount(pairs[:, 1], minlength=od.shape[1])
    by_origin = np.bincount(origins[pairs[:, 0]], minlength=od.shape[0])
    return (f"{len(pairs)} OD pair(s) with {trips:.6g} trips have no path (the first: zone "
            f"{first_o} -> zone {first_d}); zones most often cut off: "
            f"{_most(by_destination, names, 'as destination')}, "
            f"{_most(by_origin, names, 'as origin')}")


UNREACHABLE_HINT = ("; connect those zones, or run with unreachable_demand \"drop\" "
                    "(cartolog model run --unreachable drop) to assign the rest and report it")


def _most(counts: NDArray[np.int64], names: list[int], role: str) -> str:
    top = [int(i) for i in np.argsort(-counts, kind="stable")[:5] if counts[i] > 0]
    return f"{role} " + ", ".join(
        f"{names[i]} ({int(counts[i])} pair{'' if counts[i] == 1 else 's'})" for i in top)


def _algorithm_b(
    graph: Graph,
    od: FloatArray,
    settings: AssignmentSettings,
    report: ProgressCallback,
    started: float,
    zone_ids: list[int] | None,
) -> tuple[FloatArray, int, bool, PathSkims]:
    """Algorithm B from all-or-nothing flows; returns flows, iterations, whether it stalled
    and the least-cost paths of its last gap measurement."""
    merged = contract(graph)  # series links solved as one (decision 0116)
    g = merged.graph if merged is not None else graph
    origins = origins_with_demand(od)
    k, m, n = len(origins), g.n_links, g.n_nodes
    with normal_pages():
        bushes = bush.bushes(k, n, m)
        work = bush.scratch(min(lanes(), k), n, k, m)
    reach = bush.init_bushes(g, origins, od, link_costs(g, np.zeros(m)), bushes)
    _refuse_unreached(od, origins, np.isfinite(reach), zone_ids)
    x, costs, d = np.empty(m), np.empty((1, m)), np.empty(m)
    c = costs[0]  # one class: the kernels' costs are classes x links (0139)
    one = bush.one_class(g, od[origins].sum(axis=1))
    bush.sum_flows(bushes, g, x, costs, d)
    total_demand = float(od.sum())
    demand = od[origins]
    # The all-or-nothing start is not measured: a shortest-path pass only to set the first
    # threshold (decision 0119). The first iteration always runs.
    gap = _FIRST_GAP
    iteration = 0
    stagnation = Stagnation(settings.relative_gap, "b")
    stalled = False
    sweeps = 0
    while iteration == 0 or (gap > settings.relative_gap
                             and iteration < settings.max_iterations):
        mean_cost = float(x @ c) / total_demand
        threshold = mean_cost * max(_TARGET_SHARE * settings.relative_gap, _GAP_SHARE * gap)
        bush.reshape_then_shift(g, origins, bushes, x, costs, d, _PASSES, threshold, work, one)
        sweeps = extra_sweeps(stagnation.gaps, gap, sweeps, _FLOW_SWEEPS, _SWEEP_GAP)
        doubled = sweeps > _FLOW_SWEEPS
        for sweep in range(sweeps):
            skip = _SKIP_SETTLED and not (doubled and _REFRESH and sweep % _REFRESH == 0)
            bush.shift_flows(g, origins, bushes, x, costs, d, 1, threshold, work, skip, one)
        bush.sum_flows(bushes, g, x, costs, d)
        iteration += 1
        if iteration == 1 and _unmeasured_first(settings):
            continue  # far from any target this fine: no shortest-path pass (0127)
        skims = _path_skims(g, origins, c, work)
        gap = gap_of(x, c, demand, skims.cost)
        report(iteration, gap, time.perf_counter() - started)
        stalled = stagnation.stalled(gap)
        if stalled:
            break
    flows = merged.expand(x) if merged is not None else x
    return flows, iteration, stalled, skims


def extra_sweeps(gaps: list[float], gap: float, last: int, base: int, from_gap: float) -> int:
    """The single sweeps after this iteration's re-shape: doubled from the last count (at
    least ``base``, up to MAX_SWEEPS) while the measured gaps (``gaps``, latest last) fail to
    halve against the better of the two before; otherwise ``base`` below ``from_gap`` and
    none above. Steep or flat costs (BPR power 12, or 1.5 at 40 times capacity) make the
    origins undo each other's moves: each outer iteration then gains little, while more
    sweeps over the same bushes still converge (decision 0141)."""
    if len(gaps) >= 3 and gaps[-1] > 0.5 * min(gaps[-3], gaps[-2]):
        return min(MAX_SWEEPS, max(2 * last, base))
    return base if gap < from_gap else 0


def _unmeasured_first(settings: AssignmentSettings) -> bool:
    """Whether the first iteration ends without a gap measurement: it starts from
    all-or-nothing trees, and on every network we have seen it ends above gap 1e-3."""
    return settings.relative_gap < _MEASURE_FIRST_FROM and settings.max_iterations > 1


def _path_skims(g: Graph, origins: NDArray[np.int32], c: FloatArray, work: bush.Scratch
                ) -> PathSkims:
    """One shortest-path pass at costs ``c``: the gap's least costs, and the time skims; the
    trees are kept in ``work`` for the next re-shape."""
    cost, along = shortest_paths(g, origins, c, other=c - g.fixed_cost,
                                 tree_pred=work.tree_pred)
    return PathSkims(origins, cost, along)


# Per origin and iteration: at most _PASSES flow-shifting sweeps, shifting only where the longest
# and shortest used paths differ by more than the threshold (a share of the mean trip cost that
# shrinks with the gap). Tuned on Winnipeg and the synthetic grid (docs/decisions/0101, 0131).
_FLOW_SWEEPS = 8
# Far from equilibrium (gap above this) the bushes are still changing shape: the extra sweeps
# cost more than they gain (docs/decisions/0112). Since the sweeps skip settled bushes and
# walk each segment once (0114), and read bushes as lists (0130), they pay from gap 5e-2 on
# (0131); from the start, they stall Berlin-Center near 1e-6.
_SWEEP_GAP = 5e-2
# The most single sweeps an iteration doubles up to while the gap stops halving (0141).
MAX_SWEEPS = 256
_PASSES = 2
# The extra sweeps skip bushes whose previous sweep found nothing above the threshold.
_SKIP_SETTLED = True
# Once the extra sweeps are doubled, every _REFRESH-th sweep visits every bush (0144): a
# skipped bush's labels are those of its own last sweep, stale once other bushes moved.
# (None: never, as before 0144; bench/random_cities.py measures against it.)
_REFRESH: int | None = 2
_TARGET_SHARE = 0.1
_GAP_SHARE = 0.01
# The gap assumed for the first iteration's threshold (its start is not measured, 0119).
_FIRST_GAP = 0.1
# Below this target the first iteration's end is not measured either (decision 0127).
_MEASURE_FIRST_FROM = 1e-3


STALL_WINDOWS = {"b": 20, "b-classes": 40, "bfw": 200, "fw": 400}
"""Iterations over which the best gap must fall by STALL_FACTOR (docs/decisions/0111)."""
STALL_FACTOR = 0.5


class Stagnation:
    """Detects a run that no longer makes progress towards its target gap.

    Stalled when the best gap of the last ``window`` iterations is not below ``STALL_FACTOR``
    times the best gap seen before them. The window depends on the algorithm: Algorithm B
    gains an order of magnitude in a few iterations, Frank-Wolfe needs hundreds to halve.
    """

    def __init__(self, target: float, algorithm: str) -> None:
        self.target = target
        self.window = STALL_WINDOWS[algorithm]
        self.gaps: list[float] = []

    def stalled(self, gap: float) -> bool:
        """Record this iteration's gap; True when the run has stagnated."""
        self.gaps.append(gap)
        if gap <= self.target or len(self.gaps) <= self.window:
            return False
        before = min(self.gaps[:-self.window])
        recent = min(self.gaps[-self.window:])
        return not recent < STALL_FACTOR * before
