"""Multi-class Algorithm B: one class is the single-class equilibrium, identical PCE-1 classes
add up to one class, bans hold, select-link on the bushes adds up to the link flows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulation_worker.model import (
    AssignmentSettings,
    CostParameters,
    ExplicitDemand,
    TntpCase,
    assign,
)
from simulation_worker.model.classes import VehicleClass, assign_classes
from simulation_worker.model.costs import beckmann_objective, link_costs
from simulation_worker.model.errors import DisconnectedDemandError
from simulation_worker.model.graph import build_graph
from simulation_worker.model.network import ModelInput
from simulation_worker.model.paths import relative_gap
from simulation_worker.model.select_link import LinkSelection

GAP = 1e-6
B = AssignmentSettings(algorithm="b", relative_gap=GAP, max_iterations=200)


def model_of(case: TntpCase) -> tuple[ModelInput, np.ndarray]:
    model = case.model_input(CostParameters(), B)
    assert isinstance(model.demand, ExplicitDemand)
    return model, np.asarray(model.demand.trips)


def with_banned_links(model: ModelInput, positions: list[int]) -> tuple[ModelInput, np.ndarray]:
    banned = np.zeros(model.network.n_links, dtype=bool)
    banned[positions] = True
    types = np.where(banned, 2, 1)
    return replace(model, network=replace(model.network, link_type=types)), banned


def test_one_class_reaches_the_single_class_equilibrium(sioux_falls: TntpCase) -> None:
    model, trips = model_of(sioux_falls)
    one = assign_classes(model, {"all": trips}, (VehicleClass("all"),))
    exact = assign(build_graph(model.network, model.zones, model.costs), trips,
                   AssignmentSettings(algorithm="b", relative_gap=1e-10))
    assert one.converged and one.relative_gap <= GAP
    # Sioux Falls' link costs all rise with flow, so its equilibrium link flows are unique
    np.testing.assert_allclose(one.pce_flows, exact.flows, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("name", ["sioux_falls", "winnipeg"])
def test_two_identical_classes_of_pce_1_give_the_one_class_equilibrium(
        name: str, request: pytest.FixtureRequest) -> None:
    model, trips = model_of(request.getfixturevalue(name))
    two = assign_classes(model, {"car": 0.7 * trips, "van": 0.3 * trips},
                         (VehicleClass("car"), VehicleClass("van")))
    one = assign_classes(model, {"all": trips}, (VehicleClass("all"),))
    assert two.converged and one.converged
    graph = build_graph(model.network, model.zones, model.costs)
    flows = [two.pce_flows[graph.link_index], one.pce_flows[graph.link_index]]
    # the two-class total flows are a one-class equilibrium of the summed demand, to the gap
    assert relative_gap(graph, flows[0], link_costs(graph, flows[0]), trips) <= 1.01 * GAP
    objective = [beckmann_objective(graph, f) for f in flows]
    assert objective[0] == pytest.approx(objective[1], rel=GAP)
    np.testing.assert_allclose(two.class_flows["car"] + two.class_flows["van"], two.pce_flows,
                               rtol=1e-12)
    if name == "sioux_falls":  # every link cost rises with flow: the link flows are unique
        np.testing.assert_allclose(flows[0], flows[1], rtol=1e-3, atol=1e-2)


def test_trucks_banned_from_links_stay_off_them_and_weigh_their_pce(
        winnipeg: TntpCase) -> None:
    model, trips = model_of(winnipeg)
    model, banned = with_banned_thru_links(model, seed=11, share=20)
    trucks = VehicleClass("truck", pce=2.5, allowed_link_types=(1,))
    result = assign_classes(model, {"car": 0.9 * trips, "truck": 0.1 * trips},
                            (VehicleClass("car"), trucks))
    assert result.converged and result.relative_gap <= GAP
    assert np.all(result.class_flows["truck"][banned] == 0.0)
    assert float(result.class_flows["car"][banned].sum()) > 0
    np.testing.assert_allclose(
        result.pce_flows, result.class_flows["car"] + 2.5 * result.class_flows["truck"],
        rtol=1e-12)


def with_banned_thru_links(model: ModelInput, seed: int, share: int
                           ) -> tuple[ModelInput, np.ndarray]:
    """Type 2 on a seeded 1/``share`` of the links between thru nodes, type 1 elsewhere."""
    net = model.network
    thru = np.flatnonzero((net.link_from >= net.first_thru_node)
                          & (net.link_to >= net.first_thru_node))
    chosen = np.random.default_rng(seed).choice(thru, len(thru) // share, replace=False)
    return with_banned_links(model, [int(k) for k in chosen])


def link(case: TntpCase, tail: int, head: int) -> int:
    net = case.network
    return int(np.flatnonzero((net.link_from == tail) & (net.link_to == head))[0])


def test_select_link_on_bushes_adds_up_and_leaves_the_assignment_alone(
        sioux_falls: TntpCase) -> None:
    model, trips = model_of(sioux_falls)
    classes = (VehicleClass("car"), VehicleClass("truck", pce=2.5, distance_factor=0.5))
    demand = {"car": trips, "truck": 0.1 * trips}
    a, b = link(sioux_falls, 10, 15), link(sioux_falls, 15, 19)
    selections = (LinkSelection("a", (a,)), LinkSelection("b", (b,)),
                  LinkSelection("either", (a, b), "or"), LinkSelection("both", (a, b), "and"))
    plain = assign_classes(model, demand, classes)
    result = assign_classes(model, demand, classes, selections=selections)
    np.testing.assert_array_equal(plain.pce_flows, result.pce_flows)
    found = result.select_link
    assert plain.select_link is None and found is not None
    for name in ("car", "truck"):
        flow = result.class_flows[name]
        for selection, index in (("a", a), ("b", b)):
            matrix = found.matrices[(selection, name)]
            assert matrix.sum() == pytest.approx(flow[index], rel=1e-9)
            assert found.flows[(selection, name)][index] == pytest.approx(flow[index], rel=1e-9)
            assert np.all(found.flows[(selection, name)] <= flow * (1 + 1e-9) + 1e-9)
            # every selected trip leaves its origin and reaches its destination
            assert np.all(matrix <= demand[name] * (1 + 1e-9) + 1e-12)
        both = found.flows[("both", name)]
        assert both[a] == pytest.approx(both[b], rel=1e-9)  # the same trips cross both
        total = {s: found.matrices[(s, name)].sum() for s in ("a", "b", "either", "both")}
        assert total["both"] > 0
        assert total["both"] == pytest.approx(both[a], rel=1e-9)
        assert total["either"] == pytest.approx(total["a"] + total["b"] - total["both"],
                                                rel=1e-9)


def test_a_banned_class_selects_nothing_on_its_banned_link(sioux_falls: TntpCase) -> None:
    model, trips = model_of(sioux_falls)
    model, _ = with_banned_links(model, [0, 3])  # 1->2 and 2->6; zones stay reachable
    trucks = VehicleClass("truck", pce=2.5, allowed_link_types=(1,))
    result = assign_classes(model, {"car": trips, "truck": 0.1 * trips},
                            (VehicleClass("car"), trucks),
                            selections=(LinkSelection("first", (0,)),))
    assert result.select_link is not None
    assert result.select_link.matrices[("first", "truck")].sum() == 0.0
    assert result.select_link.matrices[("first", "car")].sum() == pytest.approx(
        result.class_flows["car"][0], rel=1e-9)


class _StallsAtOnce:
    """A stagnation rule that declares the run stalled after its second iteration."""

    def __init__(self, target: float, algorithm: str) -> None:
        self.gaps: list[float] = []

    def stalled(self, gap: float) -> bool:
        self.gaps.append(gap)
        return len(self.gaps) >= 2


def test_a_stalled_algorithm_b_hands_over_to_frank_wolfe_with_its_selections(
        sioux_falls: TntpCase, monkeypatch: pytest.MonkeyPatch) -> None:
    model, trips = model_of(sioux_falls)
    monkeypatch.setattr("simulation_worker.model.classes.Stagnation", _StallsAtOnce)
    a = link(sioux_falls, 10, 15)
    settings = AssignmentSettings(algorithm="b", relative_gap=1e-4, max_iterations=5000)
    result = assign_classes(model, {"car": trips, "truck": 0.1 * trips},
                            (VehicleClass("car"), VehicleClass("truck", pce=2.5)), settings,
                            (LinkSelection("a", (a,)),))
    assert result.fallback == "fw" and result.iterations > 2
    assert result.converged and not result.stalled and result.relative_gap <= 1e-4
    assert result.select_link is not None
    for name in ("car", "truck"):
        assert result.select_link.matrices[("a", name)].sum() == pytest.approx(
            result.class_flows[name][a], rel=1e-9)


def test_a_class_without_demand_carries_and_selects_nothing(sioux_falls: TntpCase) -> None:
    model, trips = model_of(sioux_falls)
    result = assign_classes(model, {"idle": 0 * trips, "car": trips},
                            (VehicleClass("idle"), VehicleClass("car")),
                            selections=(LinkSelection("first", (0,)),))
    assert result.converged and float(result.class_flows["idle"].sum()) == 0.0
    assert result.select_link is not None
    assert result.select_link.matrices[("first", "idle")].sum() == 0.0
    assert result.select_link.matrices[("first", "car")].sum() == pytest.approx(
        result.class_flows["car"][0], rel=1e-9)


THREE_CLASSES = (VehicleClass("car"),
                 VehicleClass("van", pce=1.5, value_of_time=1.5, distance_factor=0.2),
                 VehicleClass("truck", pce=2.5, value_of_time=2.0, distance_factor=1.0,
                              allowed_link_types=(1,)))
SAME_PCE_2 = (VehicleClass("a", pce=2.0), VehicleClass("b", pce=2.0), VehicleClass("c", pce=2.0))


@pytest.mark.parametrize("classes", [THREE_CLASSES, SAME_PCE_2], ids=["3-classes", "pce-2"])
def test_several_classes_on_winnipeg_converge_without_falling_back(
        winnipeg: TntpCase, classes: tuple[VehicleClass, ...]) -> None:
    """Before decision 0139 both stalled (near 3e-5 and 1.7e-5) and handed over to Frank-
    Wolfe: links kept in a bush for 1e-16 vehicles barred cheaper links from it for good."""
    model, trips = model_of(winnipeg)
    model, banned = with_banned_thru_links(model, seed=3, share=50)
    shares = (0.8, 0.1, 0.1)
    demand = {c.name: share * trips for c, share in zip(classes, shares, strict=True)}
    result = assign_classes(model, demand, classes)
    assert result.fallback is None and not result.stalled
    assert result.converged and result.relative_gap <= GAP
    for c in classes:
        if c.allowed_link_types is not None:
            assert np.all(result.class_flows[c.name][banned] == 0.0)
    pce = sum(c.pce * result.class_flows[c.name] for c in classes)
    np.testing.assert_allclose(result.pce_flows, pce, rtol=1e-12)


def test_classes_without_any_trips_assign_nothing(sioux_falls: TntpCase) -> None:
    model, trips = model_of(sioux_falls)
    result = assign_classes(model, {"car": 0 * trips, "truck": 0 * trips},
                            (VehicleClass("car"), VehicleClass("truck", pce=2.5)),
                            selections=(LinkSelection("first", (0,)),))
    assert result.converged and result.iterations == 0 and result.relative_gap == 0.0
    assert float(result.pce_flows.sum()) == 0.0
    assert result.select_link is not None
    assert result.select_link.matrices[("first", "car")].sum() == 0.0


@pytest.mark.parametrize("algorithm", ["b", "fw"])
def test_demand_a_ban_cuts_off_is_refused_naming_pairs_trips_and_the_first_pair(
        sioux_falls: TntpCase, algorithm: str) -> None:
    model, trips = model_of(sioux_falls)
    into_zone_1 = np.flatnonzero(model.network.link_to == 1).tolist()
    model, _ = with_banned_links(model, into_zone_1)
    trucks = VehicleClass("truck", pce=2.5, allowed_link_types=(1,))
    cut = trips[1:, 0] * 0.1  # trucks to zone 1, from every other zone
    pairs = int((cut > 0).sum())
    expected = (f"class 'truck' on the link types it may use: {pairs} OD pair(s) with "
                f"{cut.sum():.6g} trips have no path (the first: zone 2 -> zone 1); zones most "
                f"often cut off: as destination 1 ({pairs} pairs), as origin 2 (1 pair), "
                "3 (1 pair), 4 (1 pair), 5 (1 pair), 6 (1 pair)")
    with pytest.raises(DisconnectedDemandError) as refused:
        assign_classes(model, {"car": 0.9 * trips, "truck": 0.1 * trips},
                       (VehicleClass("car"), trucks), replace(B, algorithm=algorithm))
    assert str(refused.value) == expected + (
        '; connect those zones, or run with unreachable_demand "drop" (cartolog model run '
        "--unreachable drop) to assign the rest and report it")


@pytest.mark.parametrize("algorithm", ["b", "fw"])
def test_dropped_demand_is_what_a_ban_cuts_off_and_the_rest_is_assigned_as_without_it(
        sioux_falls: TntpCase, algorithm: str) -> None:
    """decision 0147: "drop" assigns exactly the demand that has a path, and says what it
    left out, per class."""
    model, trips = model_of(sioux_falls)
    into_zone_1 = np.flatnonzero(model.network.link_to == 1).tolist()
    model, _ = with_banned_links(model, into_zone_1)
    classes = (VehicleClass("car"), VehicleClass("truck", pce=2.5, allowed_link_types=(1,)))
    settings = replace(B, algorithm=algorithm, unreachable="drop",
                       relative_gap=1e-6 if algorithm == "b" else 1e-3)
    dropped = assign_classes(model, {"car": 0.9 * trips, "truck": 0.1 * trips}, classes,
                             settings)
    reachable = 0.1 * trips
    reachable[1:, 0] = 0.0  # trucks to zone 1
    by_hand = assign_classes(model, {"car": 0.9 * trips, "truck": reachable}, classes,
                             replace(settings, unreachable="refuse"))
    assert set(dropped.dropped) == {"truck"}
    truck = dropped.dropped["truck"]
    assert truck.unassigned_pairs == int((trips[1:, 0] > 0).sum())
    assert truck.unassigned_trips == pytest.approx(0.1 * trips[1:, 0].sum(), rel=1e-12)
    np.testing.assert_array_equal(truck.trips, reachable)
    np.testing.assert_allclose(dropped.pce_flows, by_hand.pce_flows, rtol=1e-9, atol=1e-9)
    assigned = dropped.assigned_trips({"car": 0.9 * trips, "truck": 0.1 * trips})
    np.testing.assert_array_equal(assigned["car"], 0.9 * trips)
    np.testing.assert_array_equal(assigned["truck"], reachable)
