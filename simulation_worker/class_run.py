"""A run with declared vehicle classes: multi-class equilibrium, per-class flows, indicators
and skims, in the same output document as a single-class run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from adapters.demand_matrix import DemandMatrix
from simulation_worker.model.classes import assign_classes, class_indicators
from simulation_worker.model.indicators import accessibility, indicators, link_results
from simulation_worker.model.run import DEFAULT_LOGSUM_BETA
from simulation_worker.model.skims import class_skims
from simulation_worker.model_input import RunInput


@dataclass(frozen=True)
class ClassRunOutput:
    """What the output document holds, and the skims blob it names."""

    links: list[dict[str, Any]]
    zones: list[dict[str, Any]]
    indicators: dict[str, float]
    skims: bytes


def run_classes(run_input: RunInput) -> ClassRunOutput:
    """Assign every declared class to a joint equilibrium and describe the result."""
    model = run_input.model
    equilibrium = assign_classes(model, run_input.class_trips, run_input.classes)
    links = link_results(model, equilibrium.pce_flows)
    trips = np.sum(list(run_input.class_trips.values()), axis=0)
    found = class_skims(model, equilibrium)
    first = run_input.classes[0].name
    time_skim, cost_skim = found.tables[(first, "time")], found.tables[(first, "cost")]
    within, logsum = accessibility(model, time_skim, cost_skim, DEFAULT_LOGSUM_BETA)
    figures = {k: float(v) for k, v in asdict(indicators(model, links, trips, time_skim)).items()}
    figures.update(relative_gap=equilibrium.relative_gap, iterations=float(equilibrium.iterations),
                   converged=float(equilibrium.converged), stalled=0.0, fallback_bfw=0.0)
    for name, values in class_indicators(model, equilibrium, run_input.class_trips).items():
        figures.update({f"class.{name}.{key}": value for key, value in values.items()})
    rows = [{"id": link_id, "flow": _num(links.flow[i]), "time": _num(links.time[i]),
             "volume_capacity": _num(links.volume_capacity[i]),
             "generalized_cost": _num(links.generalized_cost[i]),
             "class_flows": {n: _num(f[i]) for n, f in equilibrium.class_flows.items()}}
            for i, link_id in enumerate(run_input.link_names)]
    skims = DemandMatrix(found.zone_ids, found.named()).to_blob()
    return ClassRunOutput(rows, _zones(run_input, trips, within, logsum), figures, skims)


def _zones(run_input: RunInput, trips: np.ndarray, within: np.ndarray, logsum: np.ndarray
           ) -> list[dict[str, Any]]:
    return [{"id": zone.id, "trips_from": _num(trips[i].sum()),
             "trips_to": _num(trips[:, i].sum()), "jobs_within_threshold": _num(within[i]),
             "logsum_accessibility": _num(logsum[i])}
            for i, zone in enumerate(run_input.model.zones)]


def _num(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
