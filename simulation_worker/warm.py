"""Tiny model inputs that a model process runs once before taking jobs (decision 0312).

numba compiles each function on its first call in a process, or loads it from its on-disk
cache; either costs far more than solving a small network. Running these inputs once makes
every later job of that process find the code already in memory. They take the same path
as a job (the input document, the model, skims, the output document), once with a trip
matrix and once with gravity demand.
"""

from __future__ import annotations

import numpy as np

from simulation_worker.model import ExplicitDemand, GravityDemand, ModelInput, Zone, make_network
from simulation_worker.model_input import RunInput

# A ring of six nodes, both directions, with a chord; zones at nodes 1, 3 and 5.
_FROM = (1, 2, 3, 4, 5, 6, 2, 3, 4, 5, 6, 1, 1, 4)
_TO = (2, 3, 4, 5, 6, 1, 1, 2, 3, 4, 5, 6, 4, 1)


def warm_up_inputs() -> list[bytes]:
    """Input documents (``cartolog.model-input/1`` plus link names) of the warm-up runs."""
    count = len(_FROM)
    network = make_network(np.array(_FROM), np.array(_TO), np.full(count, 100.0),
                           np.full(count, 1.0), np.linspace(1.0, 2.0, count))
    zones = tuple(Zone(node, node, 100.0 * node, 50.0 * (7 - node)) for node in (1, 3, 5))
    trips = np.array([[0.0, 60.0, 40.0], [30.0, 0.0, 50.0], [70.0, 20.0, 0.0]])
    names = tuple(f"warm-{index}" for index in range(count))
    return [RunInput(ModelInput(network, zones, demand), names).document()
            for demand in (ExplicitDemand(trips), GravityDemand())]
