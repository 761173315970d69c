"""Select-link: the selected demand adds up to the link's flow, an or-set counts a trip once."""

from __future__ import annotations

import numpy as np
import pytest

from simulation_worker.model import AssignmentSettings, CostParameters, ModelInputError, TntpCase
from simulation_worker.model.classes import VehicleClass, assign_classes
from simulation_worker.model.select_link import LinkSelection

SETTINGS = AssignmentSettings(algorithm="fw", relative_gap=1e-4, max_iterations=5000)
CLASSES = (VehicleClass("car"), VehicleClass("truck", pce=2.5, distance_factor=0.5))


def link(case: TntpCase, tail: int, head: int) -> int:
    net = case.network
    return int(np.flatnonzero((net.link_from == tail) & (net.link_to == head))[0])


def test_selected_demand_equals_the_link_flow_and_an_or_set_never_counts_twice(
        sioux_falls: TntpCase) -> None:
    model = sioux_falls.model_input(CostParameters(), SETTINGS)
    trips = np.asarray(model.demand.trips)  # type: ignore[union-attr]
    a, b = link(sioux_falls, 10, 15), link(sioux_falls, 15, 19)
    selections = (LinkSelection("a", (a,)), LinkSelection("b", (b,)),
                  LinkSelection("either", (a, b), "or"), LinkSelection("both", (a, b), "and"))
    result = assign_classes(model, {"car": trips, "truck": 0.1 * trips}, CLASSES, SETTINGS,
                            selections)
    found = result.select_link
    assert found is not None
    for name in ("car", "truck"):
        flow = result.class_flows[name]
        for selection, index in (("a", a), ("b", b)):
            matrix = found.matrices[(selection, name)]
            assert matrix.sum() == pytest.approx(flow[index], rel=1e-9)
            assert found.flows[(selection, name)][index] == pytest.approx(flow[index], rel=1e-9)
            assert np.all(found.flows[(selection, name)] <= flow * (1 + 1e-9) + 1e-9)
        total = {s: found.matrices[(s, name)].sum() for s in ("a", "b", "either", "both")}
        assert total["both"] > 0
        assert total["either"] == pytest.approx(total["a"] + total["b"] - total["both"],
                                                rel=1e-9)
        assert total["either"] < total["a"] + total["b"]


def test_no_selection_leaves_the_assignment_as_it_was(sioux_falls: TntpCase) -> None:
    model = sioux_falls.model_input(CostParameters(), SETTINGS)
    trips = np.asarray(model.demand.trips)  # type: ignore[union-attr]
    plain = assign_classes(model, {"car": trips}, CLASSES[:1], SETTINGS)
    selected = assign_classes(model, {"car": trips}, CLASSES[:1], SETTINGS,
                              (LinkSelection("a", (link(sioux_falls, 10, 15),)),))
    assert plain.select_link is None
    np.testing.assert_array_equal(plain.pce_flows, selected.pce_flows)


def test_selections_are_checked(sioux_falls: TntpCase) -> None:
    model = sioux_falls.model_input(CostParameters(), SETTINGS)
    trips = np.asarray(model.demand.trips)  # type: ignore[union-attr]
    for bad in ((LinkSelection("x", tuple(range(11))),), (LinkSelection("x", (0,), "xor"),),
                (LinkSelection("x", (10_000,)),)):
        with pytest.raises(ModelInputError):
            assign_classes(model, {"car": trips}, CLASSES[:1], SETTINGS, bad)
