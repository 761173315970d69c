"""A run with declared vehicle classes: multi-class equilibrium, per-class flows, indicators
and skims, in the same output document as a single-class run."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from adapters.demand_matrix import SELECT_LINK_MAGIC, DemandMatrix
from simulation_worker.model.classes import assign_classes, class_indicators
from simulation_worker.model.indicators import accessibility, indicators, link_results
from simulation_worker.model.run import DEFAULT_LOGSUM_BETA
from simulation_worker.model.select_link import SelectLinkResult
from simulation_worker.model.skims import class_skims
from simulation_worker.model_input import RunInput


@dataclass(frozen=True)
class ClassRunOutput:
    """What the output document holds, and the skims blob it names."""

    links: list[dict[str, Any]]
    zones: list[dict[str, Any]]
    indicators: dict[str, float]
    skims: bytes
    select_links: dict[str, bytes]


def run_classes(run_input: RunInput) -> ClassRunOutput:
    """Assign every declared class to a joint equilibrium and describe the result.

    The scenario's algorithm chooses the solver: ``b`` (the default) multi-class Algorithm B,
    select-link read off its bushes; ``fw`` or ``bfw`` multi-class Frank-Wolfe
    (docs/decisions/0124, 0125)."""
    model = run_input.model
    equilibrium = assign_classes(model, run_input.class_trips, run_input.classes,
                                 selections=run_input.selections)
    links = link_results(model, equilibrium.pce_flows)
    assigned = equilibrium.assigned_trips(run_input.class_trips)
    trips = np.sum(list(assigned.values()), axis=0)
    found = class_skims(model, equilibrium)
    first = run_input.classes[0].name
    time_skim, cost_skim = found.tables[(first, "time")], found.tables[(first, "cost")]
    within, logsum = accessibility(model, time_skim, cost_skim, DEFAULT_LOGSUM_BETA)
    figures = {k: float(v) for k, v in asdict(indicators(model, links, trips, time_skim)).items()}
    figures.update(relative_gap=equilibrium.relative_gap, iterations=float(equilibrium.iterations),
                   converged=float(equilibrium.converged),
                   stalled=float(equilibrium.stalled), fallback_bfw=0.0)
    for name, values in class_indicators(model, equilibrium, assigned).items():
        figures.update({f"class.{name}.{key}": value for key, value in values.items()})
    if equilibrium.dropped:
        figures.update(
            unassigned_trips=sum(d.unassigned_trips for d in equilibrium.dropped.values()),
            unassigned_pairs=float(sum(d.unassigned_pairs for d in equilibrium.dropped.values())))
        for name, dropped in equilibrium.dropped.items():
            figures[f"class.{name}.unassigned_trips"] = dropped.unassigned_trips
    rows = [{"id": link_id, "flow": _num(links.flow[i]), "time": _num(links.time[i]),
             "volume_capacity": _num(links.volume_capacity[i]),
             "generalized_cost": _num(links.generalized_cost[i]),
             "class_flows": {n: _num(f[i]) for n, f in equilibrium.class_flows.items()}}
            for i, link_id in enumerate(run_input.link_names)]
    skims = DemandMatrix(found.zone_ids, found.named()).to_blob()
    return ClassRunOutput(rows, _zones(run_input, trips, within, logsum), figures, skims,
                          _select_link_blobs(run_input, equilibrium.select_link))


def _select_link_blobs(run_input: RunInput, found: SelectLinkResult | None) -> dict[str, bytes]:
    """Per selection, one blob: its OD matrix per class, and the link flows of that demand."""
    if found is None:
        return {}
    zone_ids = tuple(z.id for z in run_input.model.zones)
    blobs: dict[str, bytes] = {}
    for selection in run_input.selections:
        keys = [(selection.name, c.name) for c in run_input.classes]
        matrix = DemandMatrix(zone_ids, {k[1]: found.matrices[k] for k in keys}).to_blob()
        flows = {k[1]: {name: float(f) for name, f in zip(run_input.link_names,
                                                          found.flows[k], strict=True) if f > 0}
                 for k in keys}
        header = json.dumps({"name": selection.name, "mode": selection.mode,
                             "links": [run_input.link_names[i] for i in selection.links],
                             "link_flows": flows}, sort_keys=True).encode()
        blobs[selection.name] = SELECT_LINK_MAGIC + header + b"\n" + matrix
    return blobs


def _zones(run_input: RunInput, trips: np.ndarray, within: np.ndarray, logsum: np.ndarray
           ) -> list[dict[str, Any]]:
    return [{"id": zone.id, "trips_from": _num(trips[i].sum()),
             "trips_to": _num(trips[:, i].sum()), "jobs_within_threshold": _num(within[i]),
             "logsum_accessibility": _num(logsum[i])}
            for i, zone in enumerate(run_input.model.zones)]


def _num(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
