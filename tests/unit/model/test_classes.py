"""Multi-class assignment: identical classes add up to one class; a banned class stays off."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulation_worker.model import (
    AssignmentSettings,
    CostParameters,
    ExplicitDemand,
    ModelInputError,
    TntpCase,
    assign,
)
from simulation_worker.model.classes import VehicleClass, assign_classes, class_indicators
from simulation_worker.model.graph import build_graph
from simulation_worker.model.network import ModelInput

GAP = 1e-4
FW = AssignmentSettings(algorithm="fw", relative_gap=GAP, max_iterations=5000)


def sioux_falls_model(case: TntpCase) -> tuple[ModelInput, np.ndarray]:
    model = case.model_input(CostParameters(), FW)
    assert isinstance(model.demand, ExplicitDemand)
    return model, np.asarray(model.demand.trips)


def test_two_identical_classes_of_pce_1_give_the_flows_of_one_class_with_summed_demand(
        sioux_falls: TntpCase) -> None:
    model, trips = sioux_falls_model(sioux_falls)
    two = assign_classes(model, {"car": 0.7 * trips, "van": 0.3 * trips},
                         (VehicleClass("car"), VehicleClass("van")))
    one = assign_classes(model, {"all": trips}, (VehicleClass("all"),))
    assert two.converged and two.relative_gap <= GAP and one.relative_gap <= GAP
    np.testing.assert_allclose(two.pce_flows, one.pce_flows, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(two.class_flows["car"], 0.7 * two.pce_flows, rtol=1e-9)
    assert two.iterations == one.iterations


def test_a_single_class_matches_the_algorithm_b_equilibrium_to_the_gap(
        sioux_falls: TntpCase) -> None:
    model, trips = sioux_falls_model(sioux_falls)
    one = assign_classes(model, {"all": trips}, (VehicleClass("all"),))
    exact = assign(build_graph(model.network, model.zones, model.costs), trips,
                   AssignmentSettings(algorithm="b", relative_gap=1e-10))
    big = exact.flows > 10
    relative = np.abs(one.pce_flows[big] - exact.flows[big]) / exact.flows[big]
    assert float(np.max(relative)) < 0.05
    assert abs(float(one.pce_flows @ one.link_times) / float(exact.flows @ exact.costs) - 1) \
        < 10 * GAP


def test_trucks_banned_from_a_link_type_never_use_it_and_weigh_their_pce(
        sioux_falls: TntpCase) -> None:
    model, trips = sioux_falls_model(sioux_falls)
    types = model.network.link_type.copy()
    banned = np.zeros_like(types, dtype=bool)
    banned[[0, 3]] = True  # 1->2 and 2->6: every zone stays reachable by other links
    types[banned] = 9
    model = replace(model, network=replace(model.network, link_type=types))
    trucks = VehicleClass("truck", pce=2.5, allowed_link_types=tuple(int(t) for t in
                                                                     set(types[~banned])))
    result = assign_classes(model, {"car": trips, "truck": 0.1 * trips},
                            (VehicleClass("car"), trucks))
    assert result.converged
    reachable = result.class_flows["truck"]
    assert np.all(reachable[banned] == 0.0)
    assert float(result.class_flows["car"][banned].sum()) > 0
    np.testing.assert_allclose(
        result.pce_flows, result.class_flows["car"] + 2.5 * result.class_flows["truck"])
    per_class = class_indicators(model, result, {"car": trips, "truck": 0.1 * trips})
    assert per_class["truck"]["trips"] == pytest.approx(0.1 * trips.sum())
    assert per_class["car"]["vehicle_km"] > per_class["truck"]["vehicle_km"] > 0


def test_classes_are_checked_before_assigning(sioux_falls: TntpCase) -> None:
    model, trips = sioux_falls_model(sioux_falls)
    for classes, demand in (((VehicleClass("a"), VehicleClass("a")), {"a": trips}),
                            ((VehicleClass("a", pce=0.0),), {"a": trips}),
                            ((VehicleClass("b"),), {"a": trips})):
        with pytest.raises(ModelInputError):
            assign_classes(model, demand, classes)
