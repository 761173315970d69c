"""Costs on which the origins undo each other's moves: Algorithm B adds sweeps while the gap
stops halving (decision 0141) instead of stalling.

- Steep: Sioux Falls with BPR power 12 (times up to 4,000 x free flow at twice capacity).
  It stalled near gap 1.7e-4, then fell back to bi-conjugate Frank-Wolfe (which took 8,600
  iterations to 1e-6 in AequilibraE).
- Flat and congested, with classes that weigh distance differently: WinnipegAsymmetric's BPR
  part (power 1.5 at up to 40 x capacity), cars and vans with a distance cost. Cars and vans
  swapped paths a vehicle per sweep; it stalled near 1.5e-6 and fell back to Frank-Wolfe.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simulation_worker.model import AssignmentSettings, CostParameters, load_tntp_folder, run_model
from simulation_worker.model.assignment import MAX_SWEEPS, extra_sweeps
from simulation_worker.model.classes import VehicleClass, assign_classes
from tests.unit.model.conftest import network_folder
from tests.unit.model.independent import relative_gap


def test_sioux_falls_with_power_12_converges_with_algorithm_b_alone() -> None:
    case = load_tntp_folder(network_folder("SiouxFalls"))
    model = case.model_input(CostParameters(), AssignmentSettings(relative_gap=1e-6,
                                                                  max_iterations=100))
    network = replace(model.network, bpr_power=np.full(model.network.n_links, 12.0))
    result = run_model(replace(model, network=network))
    assert result.outcome == "converged" and result.fallback is None, result.message
    assert relative_gap(network, case.zones, case.trips, result.links.flow) <= 1e-6


def test_classes_that_weigh_distance_differently_converge_on_a_flat_congested_network() -> None:
    case = load_tntp_folder(network_folder("WinnipegAsymmetric"))
    model = case.model_input(CostParameters(), AssignmentSettings(relative_gap=1e-7,
                                                                  max_iterations=100))
    result = assign_classes(model, {"car": 0.9 * case.trips, "van": 0.1 * case.trips},
                            (VehicleClass("car"), VehicleClass("van", distance_factor=0.5)))
    assert result.fallback is None and not result.stalled
    assert result.converged and result.relative_gap <= 1e-7


def test_sweeps_double_while_the_gap_stops_halving_and_fall_back_when_it_does() -> None:
    assert extra_sweeps([], 0.1, 0, 8, 5e-2) == 0  # far from equilibrium: none
    assert extra_sweeps([1e-3, 4e-4, 1e-4], 1e-4, 8, 8, 5e-2) == 8  # halving: the base
    assert extra_sweeps([1e-3, 4e-4, 3e-4], 3e-4, 8, 8, 5e-2) == 16  # not: doubled
    assert extra_sweeps([1e-3, 4e-4, 3e-4], 3e-4, 0, 8, 5e-2) == 8
    assert extra_sweeps([4e-4, 3e-4, 2.9e-4], 2.9e-4, MAX_SWEEPS, 8, 5e-2) == MAX_SWEEPS
    # stuck above the gap the sweeps start from (several classes at power 12: near 2e-3)
    assert extra_sweeps([3e-3, 2.5e-3, 2.4e-3], 2.4e-3, 0, 4, 1e-3) == 4


def test_two_classes_at_power_12_converge_without_frank_wolfe() -> None:
    """They stayed above gap 1e-3, where several classes run no extra sweeps, and stalled
    near 4e-4 (0141: the doubling does not wait for that gap)."""
    case = load_tntp_folder(network_folder("SiouxFalls"))
    model = case.model_input(CostParameters(), AssignmentSettings(relative_gap=1e-6,
                                                                  max_iterations=120))
    network = replace(model.network, bpr_power=np.full(model.network.n_links, 12.0))
    result = assign_classes(replace(model, network=network),
                            {"car": 0.9 * case.trips, "truck": 0.1 * case.trips},
                            (VehicleClass("car"), VehicleClass("truck", pce=2.5)))
    assert result.fallback is None and not result.stalled
    assert result.converged and result.relative_gap <= 1e-6
