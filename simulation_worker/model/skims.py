"""Skims: zone-to-zone travel time, distance and generalized cost at the converged link costs.

Paths are the least-generalized-cost paths at the run's final flows (the ones the equilibrium
uses), honouring first-thru-node like the assignment; time and distance are summed along them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
import openmatrix as omx

from simulation_worker.model.classes import ClassAssignment
from simulation_worker.model.costs import link_costs
from simulation_worker.model.graph import build_graph
from simulation_worker.model.indicators import link_times
from simulation_worker.model.network import FloatArray, ModelInput
from simulation_worker.model.paths import zone_costs_and_sums
from simulation_worker.model.run import ModelResult

MEASURES = ("time", "distance", "cost")
SINGLE_CLASS = "all"


@dataclass(frozen=True, eq=False)
class Skims:
    """``tables[(class, measure)]`` over ``zone_ids`` (rows origins, columns destinations)."""

    zone_ids: tuple[int, ...]
    tables: dict[tuple[str, str], FloatArray]

    def named(self) -> dict[str, FloatArray]:
        """The tables keyed ``class_measure``, as they are named in files."""
        return {f"{name}_{measure}": table for (name, measure), table in self.tables.items()}


def skims(model: ModelInput, flows: FloatArray, name: str = SINGLE_CLASS) -> Skims:
    """Time, distance and cost skims of one class at network link ``flows``."""
    graph = build_graph(model.network, model.zones, model.costs)
    on_graph = flows[graph.link_index]
    cost = link_costs(graph, on_graph)
    times = link_times(model, flows)[graph.link_index]
    lengths = model.network.length[graph.link_index]
    cost_skim, time_skim = zone_costs_and_sums(graph, cost, times)
    distance_skim = zone_costs_and_sums(graph, cost, lengths)[1]
    tables = {(name, "time"): time_skim, (name, "distance"): distance_skim,
              (name, "cost"): cost_skim}
    return Skims(tuple(z.id for z in model.zones), tables)


def result_skims(model: ModelInput, result: ModelResult) -> Skims:
    """The skims of a single-class run: its own time and cost skims, plus distances along the
    same least-cost paths (one more shortest-path pass)."""
    graph = build_graph(model.network, model.zones, model.costs)
    cost = link_costs(graph, result.links.flow[graph.link_index])
    lengths = model.network.length[graph.link_index]
    distance = zone_costs_and_sums(graph, cost, lengths)[1]
    tables = {(SINGLE_CLASS, "time"): result.time_skim, (SINGLE_CLASS, "distance"): distance,
              (SINGLE_CLASS, "cost"): result.cost_skim}
    return Skims(tuple(z.id for z in model.zones), tables)


def write_omx(found: Skims, mapping: str = "zone") -> bytes:
    """An OMX file with one matrix per ``class_measure`` and the zone ids as ``mapping``."""
    descriptor, path = tempfile.mkstemp(prefix="cartolog-skims-", suffix=".omx")
    os.close(descriptor)
    try:
        handle = omx.open_file(path, "w")
        try:
            for key, table in found.named().items():
                handle[key] = np.asarray(table, dtype=np.float64)
            handle.create_mapping(mapping, np.array(found.zone_ids, dtype=np.int64))
        finally:
            handle.close()
        with open(path, "rb") as written:
            return written.read()
    finally:
        os.unlink(path)


def class_skims(model: ModelInput, assignment: ClassAssignment) -> Skims:
    """Time, distance and cost skims of every class at a multi-class equilibrium; a class's
    paths avoid the link types it may not use."""
    graph = build_graph(model.network, model.zones, model.costs)
    times = assignment.link_times[graph.link_index]
    lengths = model.network.length[graph.link_index]
    tables: dict[tuple[str, str], FloatArray] = {}
    for name, costs in assignment.class_costs.items():
        cost = costs[graph.link_index]
        cost_skim, time_skim = zone_costs_and_sums(graph, cost, times)
        tables[(name, "time")] = time_skim
        tables[(name, "distance")] = zone_costs_and_sums(graph, cost, lengths)[1]
        tables[(name, "cost")] = cost_skim
    return Skims(tuple(z.id for z in model.zones), tables)
