"""Quirks of public networks: zero free-flow time, b = 0, fractional powers, capacity 1."""

from __future__ import annotations

import numpy as np
import pytest

from simulation_worker.model import (
    AssignmentSettings,
    ExplicitDemand,
    ModelInput,
    Zone,
    make_network,
    run_model,
)
from tests.unit.model.independent import beckmann, relative_gap


def _quirky() -> ModelInput:
    # Zones 1, 2 (centroids, first thru node 3) joined by two parallel routes 3->4 and 3->5->4.
    frm = np.array([1, 3, 3, 5, 4, 4, 2])
    to = np.array([3, 4, 5, 4, 2, 1, 4])
    capacity = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    time = np.array([0.0, 5.0, 2.0, 2.0, 0.0, 0.0, 0.0])  # zero-time connectors
    b = np.array([0.0, 2.7e-9, 1e-6, 0.0, 0.0, 0.0, 0.0])  # b pre-scaled for capacity 1
    power = np.array([0.0, 3.5038, 2.5, 0.0, 0.0, 0.0, 0.0])  # fractional powers, 0 with b=0
    net = make_network(frm, to, capacity, time.copy(), time.copy(), bpr_b=b, bpr_power=power,
                       first_thru_node=3)
    zones = (Zone(1, 1, 100, 0), Zone(2, 2, 0, 100))
    trips = np.array([[0.0, 1500.0], [200.0, 0.0]])
    return ModelInput(network=net, zones=zones, demand=ExplicitDemand(trips),
                      assignment=AssignmentSettings(relative_gap=1e-10))


@pytest.mark.parametrize("algorithm", ["b", "bfw", "fw"])
def test_quirky_network_converges(algorithm: str) -> None:
    model = _quirky()
    settings = AssignmentSettings(algorithm=algorithm, relative_gap=1e-8, max_iterations=5000)
    model = ModelInput(network=model.network, zones=model.zones, demand=model.demand,
                       assignment=settings)
    result = run_model(model)
    assert result.converged
    flows = result.links.flow
    assert relative_gap(model.network, model.zones, model.demand.trips, flows) <= 1e-8
    assert np.isfinite(beckmann(model.network, flows))
    # Both routes from 3 to 4 are used and cost the same.
    assert flows[1] > 0 and flows[2] > 0
    assert result.links.time[1] == pytest.approx(result.links.time[2] + result.links.time[3],
                                                 rel=1e-6)
