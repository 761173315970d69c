"""Edits move results in the expected direction and hash reproducibly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation_worker.model import (
    AddLink,
    CloseLink,
    ExplicitDemand,
    GravityDemand,
    SetDemandParameters,
    SetLinkCapacity,
    SetLinkLanes,
    SetLinkSpeed,
    SetZoneJobs,
    SetZonePopulation,
    TntpCase,
    apply_edits,
    content_hash,
    run_model,
)
from simulation_worker.model.costs import link_cost
from simulation_worker.model.errors import EditError


def _net_outflow(case: TntpCase, flows: np.ndarray) -> np.ndarray:
    net = case.network
    balance = np.zeros(int(net.node_ids.max()) + 1)
    np.add.at(balance, net.link_from, flows)
    np.add.at(balance, net.link_to, -flows)
    return balance


def test_closing_a_loaded_link_moves_its_flow_and_conserves_demand(sioux_falls: TntpCase) -> None:
    base = sioux_falls.model_input()
    before = run_model(base)
    loaded = int(np.argmax(before.links.flow))
    link_id = int(sioux_falls.network.link_ids[loaded])
    after = run_model(apply_edits(base, [CloseLink(link_id)]))
    assert after.links.flow[loaded] == 0.0
    # Links leaving the closed link's tail pick up flow.
    tail = sioux_falls.network.link_from[loaded]
    siblings = (sioux_falls.network.link_from == tail) & (np.arange(len(before.links.flow))
                                                          != loaded)
    assert after.links.flow[siblings].sum() > before.links.flow[siblings].sum()
    # Demand is conserved: every node still emits exactly its productions minus attractions.
    np.testing.assert_allclose(_net_outflow(sioux_falls, after.links.flow),
                               _net_outflow(sioux_falls, before.links.flow), atol=1e-6)
    assert after.indicators.total_trips == before.indicators.total_trips
    assert after.indicators.vehicle_hours > before.indicators.vehicle_hours


def test_adding_capacity_draws_flow_to_the_link(sioux_falls: TntpCase) -> None:
    base = sioux_falls.model_input()
    before = run_model(base)
    i = int(np.argmax(before.links.volume_capacity))
    link_id = int(sioux_falls.network.link_ids[i])
    doubled = float(sioux_falls.network.capacity[i] * 2)
    after = run_model(apply_edits(base, [SetLinkCapacity(link_id, doubled)]))
    assert after.links.flow[i] > before.links.flow[i]
    assert after.objective < before.objective


@settings(max_examples=200, deadline=None)
@given(
    flow=st.floats(0.0, 1e5),
    t0=st.floats(0.0, 100.0),
    b=st.floats(0.0, 5.0),
    power=st.floats(0.0, 8.0),
    capacity=st.floats(1e-3, 1e5),
    factor=st.floats(1.0, 10.0),
)
def test_adding_capacity_never_raises_cost_at_equal_flow(
    flow: float, t0: float, b: float, power: float, capacity: float, factor: float
) -> None:
    assert link_cost(flow, t0, b, power, capacity * factor, 0.0) <= link_cost(
        flow, t0, b, power, capacity, 0.0
    )


def test_lanes_scale_capacity_and_speed_scales_time(sioux_falls: TntpCase) -> None:
    base = sioux_falls.model_input()
    net = base.network
    edited = apply_edits(base, [SetLinkLanes(1, 2.0), SetLinkSpeed(2, 60.0)])
    assert edited.network.capacity[0] == net.capacity[0] * 2
    assert edited.network.speed_limit[1] == 60.0
    assert net.capacity[0] == sioux_falls.network.capacity[0]  # the base is not mutated


def test_added_link_becomes_the_route_it_shortens(sioux_falls: TntpCase) -> None:
    base = sioux_falls.model_input()
    shortcut = AddLink(link_id=1000, from_node=1, to_node=20, capacity=1e5, length=1.0,
                       free_flow_time=1.0)
    before, after = run_model(base), run_model(apply_edits(base, [shortcut]))
    assert isinstance(base.demand, ExplicitDemand)
    # Zone 1 to zone 20 now costs exactly the shortcut's (nearly free-flow) time, down from
    # about 39, so every one of those trips takes it, and others join them.
    assert after.links.time[-1] == pytest.approx(1.0, rel=1e-3)
    assert after.time_skim[0, 19] == pytest.approx(after.links.time[-1], rel=1e-6)
    assert before.time_skim[0, 19] > 30
    assert after.links.flow[-1] >= base.demand.trips[0, 19] * (1 - 1e-6)
    # The new capacity lowers the total time spent travelling.
    spent = [float(np.nansum(r.links.flow * r.links.time)) for r in (before, after)]
    assert spent[1] < 0.95 * spent[0]


def test_same_edits_on_same_base_give_same_hash(sioux_falls: TntpCase) -> None:
    base = dataclasses.replace(sioux_falls.model_input(), demand=GravityDemand(beta=0.1))
    edits = [CloseLink(3), SetZonePopulation(4, 1234.5), SetZoneJobs(5, 99.0),
             SetDemandParameters(beta=0.2), SetLinkSpeed(7, 50.0)]
    first = content_hash(apply_edits(base, edits))
    assert first == content_hash(apply_edits(base, list(edits)))
    assert first != content_hash(base)
    assert first != content_hash(apply_edits(base, edits[:-1]))
    assert len(first) == 64


def test_population_edit_changes_gravity_demand(sioux_falls: TntpCase) -> None:
    base = dataclasses.replace(sioux_falls.model_input(), demand=GravityDemand(beta=0.1))
    before = run_model(base)
    zone = base.zones[0]
    after = run_model(apply_edits(base, [SetZonePopulation(zone.id, zone.population * 2)]))
    assert after.trips[0].sum() > before.trips[0].sum()


def test_unknown_link_edit_is_refused(sioux_falls: TntpCase) -> None:
    try:
        apply_edits(sioux_falls.model_input(), [CloseLink(99999)])
    except EditError as error:
        assert "99999" in str(error)
    else:
        raise AssertionError("expected EditError")
