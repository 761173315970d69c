"""``run_model``: demand, assignment and outputs for one resolved model input."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from simulation_worker.model.assignment import (
    AssignmentResult,
    ProgressCallback,
    assign,
    describe,
    drop_unreached,
    reachable,
)
from simulation_worker.model.compile_ahead import compile_kernels
from simulation_worker.model.costs import link_costs
from simulation_worker.model.errors import CostOverflowError
from simulation_worker.model.graph import Graph, build_graph
from simulation_worker.model.gravity import gravity
from simulation_worker.model.hashing import content_hash
from simulation_worker.model.indicators import (
    DEFAULT_EMISSIONS,
    EmissionFactors,
    Indicators,
    LinkResults,
    accessibility,
    indicators,
    link_results,
)
from simulation_worker.model.network import (
    ExplicitDemand,
    FloatArray,
    GravityDemand,
    ModelInput,
    validate_network,
    validate_trips,
    validate_zones,
)
from simulation_worker.model.paths import shortest_paths, zone_costs_and_sums

DEFAULT_LOGSUM_BETA = 0.1


@dataclass(frozen=True, eq=False)
class ModelResult:
    """Everything a run produces. Link arrays follow the network's link order; zone arrays and
    skims follow ``ModelInput.zones``. Times in network time units unless named otherwise."""

    input_hash: str
    links: LinkResults
    trips: FloatArray
    time_skim: FloatArray
    cost_skim: FloatArray
    jobs_within_threshold: FloatArray
    logsum_accessibility: FloatArray
    indicators: Indicators
    relative_gap: float
    objective: float
    iterations: int
    converged: bool
    feedback_iterations: int
    seconds: float
    outcome: str
    fallback: str | None
    # explicit demand no path serves, left out of the assignment (unreachable="drop"); trips
    # holds only what was assigned
    unassigned_trips: float = 0.0
    unassigned_pairs: int = 0
    unassigned_note: str | None = None

    @property
    def message(self) -> str:
        """How the assignment ended: "converged|stalled|iteration limit reached at gap G after
        N iterations", naming the fallback algorithm if one took over."""
        return describe(self.outcome, self.relative_gap, self.iterations, self.fallback)


def run_model(
    model: ModelInput,
    progress: ProgressCallback | None = None,
    emissions: EmissionFactors = DEFAULT_EMISSIONS,
) -> ModelResult:
    """Validate, distribute demand (if gravity), assign to equilibrium and compute outputs."""
    started = time.perf_counter()
    validate_network(model.network)
    validate_zones(model.network, model.zones)
    graph = build_graph(model.network, model.zones, model.costs)
    compile_kernels()  # before the gravity model's shortest paths, on two processes if cold
    zone_ids = [z.id for z in model.zones]
    try:
        dropped = None
        if isinstance(model.demand, ExplicitDemand):
            validate_trips(model.demand.trips, model.zones)
            trips = np.asarray(model.demand.trips, dtype=np.float64)
            if model.assignment.unreachable == "drop":
                dropped = drop_unreached(trips, *reachable(graph, trips), zone_ids)
                trips = dropped.trips
            result = assign(graph, trips, model.assignment, progress, zone_ids)
            feedback = 0
        else:
            trips, result, feedback = _gravity_with_feedback(model, model.demand, graph,
                                                             progress)
    except CostOverflowError as error:
        raise error.naming(model.network.describe_link(error.link)) from None
    outputs = _outputs(model, graph, trips, result, feedback, emissions, started)
    if dropped is None or not dropped.unassigned_pairs:
        return outputs
    return replace(outputs, unassigned_trips=dropped.unassigned_trips,
                   unassigned_pairs=dropped.unassigned_pairs, unassigned_note=dropped.note)


def _gravity_with_feedback(
    model: ModelInput, params: GravityDemand, graph: Graph, progress: ProgressCallback | None
) -> tuple[FloatArray, AssignmentResult, int]:
    """Gravity on free-flow costs, then method of successive averages on the OD matrix."""
    zone_ids = [z.id for z in model.zones]
    free = link_costs(graph, np.zeros(graph.n_links))
    trips = gravity(model.zones, _cost_skim(graph, free), params).trips
    result = assign(graph, trips, model.assignment, progress, zone_ids)
    for k in range(1, params.feedback_iterations + 1):
        target = gravity(model.zones, _cost_skim(graph, result.costs), params).trips
        change = float(np.abs(target - trips).sum() / max(trips.sum(), 1e-300))
        if change <= params.feedback_tolerance:
            return trips, result, k - 1
        trips = trips + (target - trips) / (k + 1)
        result = assign(graph, trips, model.assignment, progress, zone_ids)
    return trips, result, params.feedback_iterations


def _cost_skim(graph: Graph, costs: FloatArray) -> FloatArray:
    return zone_costs_and_sums(graph, costs, costs)[0]


def _skims(graph: Graph, result: AssignmentResult, times: FloatArray
           ) -> tuple[FloatArray, FloatArray]:
    """Cost and time skims at the result's costs. Rows of the zones whose paths the assignment
    kept from its last gap measurement are reused; only the other zones need a shortest-path
    pass (often none: every zone with demand is an origin)."""
    zones = len(graph.zone_node)
    kept = result.skims
    if kept is None or len(kept.origins) == 0:
        return zone_costs_and_sums(graph, result.costs, times)
    cost_skim, time_skim = np.empty((zones, zones)), np.empty((zones, zones))
    cost_skim[kept.origins], time_skim[kept.origins] = kept.cost, kept.time
    rest = np.setdiff1d(np.arange(zones, dtype=np.int32), kept.origins).astype(np.int32)
    if len(rest):
        cost_skim[rest], time_skim[rest] = shortest_paths(graph, rest, result.costs, times)
    return cost_skim, time_skim


def _outputs(model: ModelInput, graph: Graph, trips: FloatArray, result: AssignmentResult,
             feedback: int, emissions: EmissionFactors, started: float) -> ModelResult:
    flows = np.zeros(model.network.n_links)
    flows[graph.link_index] = result.flows
    links = link_results(model, flows)
    cost_skim, time_skim = _skims(graph, result, links.time[graph.link_index])
    beta = (model.demand.beta if isinstance(model.demand, GravityDemand)
            and model.demand.deterrence == "exponential" else DEFAULT_LOGSUM_BETA)
    within, logsum = accessibility(model, time_skim, cost_skim, beta)
    return ModelResult(
        input_hash=content_hash(model),
        links=links,
        trips=trips,
        time_skim=time_skim,
        cost_skim=cost_skim,
        jobs_within_threshold=within,
        logsum_accessibility=logsum,
        indicators=indicators(model, links, trips, time_skim, emissions),
        relative_gap=result.relative_gap,
        objective=result.objective,
        iterations=result.iterations,
        converged=result.converged,
        feedback_iterations=feedback,
        seconds=time.perf_counter() - started,
        outcome=result.outcome,
        fallback=result.fallback,
    )
