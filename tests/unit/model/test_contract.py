"""Series links merged for the solver (simulation_worker/model/contract.py, decision 0116).

The merge must not change the problem: costs of merged links are the sums of their parts at
every flow, zone-to-zone least costs are unchanged, and the equilibrium of a network whose
links were split in two is the original network's equilibrium on both halves.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from simulation_worker.model import (
    AssignmentSettings,
    CostParameters,
    ExplicitDemand,
    ModelInput,
    TntpCase,
    Zone,
    make_network,
    run_model,
)
from simulation_worker.model.contract import contract
from simulation_worker.model.costs import link_costs
from simulation_worker.model.graph import build_graph
from simulation_worker.model.network import Network
from simulation_worker.model.paths import zone_costs
from tests.unit.model.independent import relative_gap


def _toy() -> ModelInput:
    """Zones 1 and 2 (not through nodes). 3 -> 4 -> 5 is a one-way chain; 6 sits on a two-way
    street between 3 and 5; 7 is a dead-end spur off 5; 8 -> 9 -> 10 -> 8 is a ring that
    nothing enters; 11 joins a power-4 link to a power-2 link (no merge across it)."""
    links = [
        (1, 3, 4.0, 0.15, 4.0), (3, 4, 2.0, 0.15, 4.0), (4, 5, 0.0, 0.0, 4.0),  # chain
        (3, 6, 3.0, 0.15, 4.0), (6, 3, 3.0, 0.15, 4.0),  # two-way street via 6
        (6, 5, 1.0, 0.3, 4.0), (5, 6, 1.0, 0.3, 4.0),
        (5, 7, 1.0, 0.15, 4.0), (7, 5, 1.0, 0.15, 4.0),  # spur
        (8, 9, 1.0, 0.15, 4.0), (9, 10, 1.0, 0.15, 4.0), (10, 8, 1.0, 0.15, 4.0),  # ring
        (3, 11, 2.0, 0.15, 4.0), (11, 5, 2.0, 0.5, 2.0),  # power changes at 11
        (5, 2, 1.0, 0.15, 4.0),
    ]
    frm, to, t0, b, p = (np.array(column) for column in zip(*links, strict=True))
    net = make_network(frm, to, np.full(len(links), 50.0), t0.copy(), t0.astype(float),
                       bpr_b=b.astype(float), bpr_power=p.astype(float), first_thru_node=3)
    zones = (Zone(1, 1, 300.0, 0.0), Zone(2, 2, 0.0, 300.0))
    trips = np.array([[0.0, 300.0], [0.0, 0.0]])
    return ModelInput(network=net, zones=zones, demand=ExplicitDemand(trips),
                      assignment=AssignmentSettings(relative_gap=1e-10, max_iterations=200))


def test_chains_merge_and_nothing_else_does() -> None:
    model = _toy()
    graph = build_graph(model.network, model.zones, CostParameters())
    merged = contract(graph)
    assert merged is not None
    g = merged.graph
    # 1->3, 3->5 (via 4), 3->5 and 5->3 (via 6), 3->11, 11->5, 5->2; spur and ring dropped.
    assert g.n_links == 7
    of = merged.of_link
    position = {(int(f), int(t)): i for i, (f, t) in enumerate(
        zip(model.network.link_from[graph.link_index], model.network.link_to[graph.link_index],
            strict=True))}
    assert of[position[3, 4]] == of[position[4, 5]] >= 0
    assert of[position[3, 6]] == of[position[6, 5]] != of[position[5, 6]] == of[position[6, 3]]
    assert of[position[5, 7]] == of[position[7, 5]] == -1  # the spur comes back to 5
    assert of[position[8, 9]] == of[position[9, 10]] == of[position[10, 8]] == -1  # the ring
    assert of[position[3, 11]] != of[position[11, 5]]  # power 4 then power 2


@pytest.mark.parametrize("seed", range(5))
def test_merged_costs_are_the_sums_of_their_parts(seed: int, winnipeg: TntpCase) -> None:
    for model in (_toy(), winnipeg.model_input()):
        graph = build_graph(model.network, model.zones, CostParameters())
        merged = contract(graph)
        assert merged is not None
        rng = np.random.default_rng(seed)
        small = rng.random(merged.graph.n_links) * rng.choice([1.0, 100.0, 5000.0])
        whole = link_costs(graph, merged.expand(small))
        used = merged.of_link >= 0
        summed = np.bincount(merged.of_link[used], weights=whole[used],
                             minlength=merged.graph.n_links)
        np.testing.assert_allclose(link_costs(merged.graph, small), summed, rtol=1e-12)
        np.testing.assert_allclose(zone_costs(merged.graph, link_costs(merged.graph, small)),
                                   zone_costs(graph, whole), rtol=1e-12)


def _split(net: Network, pick: np.ndarray) -> tuple[Network, np.ndarray]:
    """Every picked link becomes two in series through a new node: the first half constant
    (half the free-flow time), the second half carrying the whole BPR term. Returns the new
    network and, per original link, the index of its (first) part."""
    middle = int(net.node_ids.max()) + 1 + np.cumsum(pick) - 1  # the new node of link i
    frm, to, t0, b, cap, power = [], [], [], [], [], []
    part = []
    for i in range(net.n_links):
        part.append(len(frm))
        if pick[i]:
            mid = int(middle[i])
            half = net.free_flow_time[i] / 2
            frm += [net.link_from[i], mid]
            to += [mid, net.link_to[i]]
            t0 += [half, half]
            b += [0.0, 2 * net.bpr_b[i]]
            cap += [net.capacity[i]] * 2
            power += [net.bpr_power[i]] * 2
        else:
            frm.append(net.link_from[i])
            to.append(net.link_to[i])
            t0.append(net.free_flow_time[i])
            b.append(net.bpr_b[i])
            cap.append(net.capacity[i])
            power.append(net.bpr_power[i])
    split = make_network(np.array(frm), np.array(to), np.array(cap), np.array(t0),
                         np.array(t0), bpr_b=np.array(b), bpr_power=np.array(power),
                         first_thru_node=net.first_thru_node)
    return split, np.array(part)


def test_a_network_with_split_links_has_the_same_equilibrium(sioux_falls: TntpCase) -> None:
    settings = AssignmentSettings(relative_gap=1e-9, max_iterations=500)
    original = run_model(sioux_falls.model_input(assignment=settings))
    pick = np.random.default_rng(3).random(sioux_falls.network.n_links) < 0.4
    net, part = _split(sioux_falls.network, pick)
    model = ModelInput(network=net, zones=sioux_falls.zones,
                       demand=ExplicitDemand(sioux_falls.trips), assignment=settings)
    graph = build_graph(net, model.zones, CostParameters())
    merged = contract(graph)
    assert merged is not None and merged.graph.n_links == sioux_falls.network.n_links
    result = run_model(model)
    assert result.converged
    assert relative_gap(net, model.zones, sioux_falls.trips, result.links.flow) <= 1e-9
    flows = result.links.flow
    np.testing.assert_allclose(flows[part], original.links.flow, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(flows[part[pick] + 1], flows[part[pick]], rtol=1e-12)


def _random_streets(seed: int) -> ModelInput:
    """A random street network: a small grid of junctions whose streets are chains of 1-4
    links (two-way, or a one-way street each way), some dead-end spurs, powers 1, 2 or 4 and
    constant-cost links mixed along the chains, and zones (not through nodes) hanging off
    junctions."""
    rng = np.random.default_rng(seed)
    zones_n, side = 4, 3
    junction = {(r, c): zones_n + 1 + r * side + c for r in range(side) for c in range(side)}
    next_id = zones_n + 1 + side * side
    frm: list[int] = []
    to: list[int] = []
    t0: list[float] = []
    b: list[float] = []
    p: list[float] = []
    cap: list[float] = []

    def add(u: int, v: int, power: float) -> None:
        constant = rng.random() < 0.25
        frm.append(u)
        to.append(v)
        t0.append(float(rng.uniform(0.5, 3.0)) if not (constant and rng.random() < 0.5)
                  else 0.0)
        b.append(0.0 if constant else float(rng.uniform(0.1, 1.0)))
        p.append(power)
        cap.append(float(rng.uniform(20.0, 80.0)))

    def street(u: int, v: int, two_way: bool) -> None:
        nonlocal next_id
        inner = list(range(next_id, next_id + int(rng.integers(0, 4))))
        next_id += len(inner)
        stops = [u, *inner, v]
        power = float(rng.choice([1.0, 2.0, 4.0]))
        for a, z in pairwise(stops):
            if rng.random() < 0.15:
                power = float(rng.choice([1.0, 2.0, 4.0]))  # a chain may change power
            add(a, z, power)
            if two_way:
                add(z, a, power)

    for (r, c), u in junction.items():
        for dr, dc in ((0, 1), (1, 0)):
            if (r + dr, c + dc) in junction:
                two_way = rng.random() < 0.7
                street(u, junction[r + dr, c + dc], two_way)
                if not two_way:  # the way back is a street of its own
                    street(junction[r + dr, c + dc], u, two_way=False)
        if rng.random() < 0.3:  # a dead end
            street(u, next_id + 1000, two_way=True)
            next_id += 1001
    for z in range(1, zones_n + 1):
        at = list(junction.values())[int(rng.integers(0, side * side))]
        add(z, at, 4.0)
        add(at, z, 4.0)
    net = make_network(np.array(frm), np.array(to), np.array(cap), np.array(t0), np.array(t0),
                       bpr_b=np.array(b), bpr_power=np.array(p), first_thru_node=zones_n + 1)
    zones = tuple(Zone(z, z, 100.0, 100.0) for z in range(1, zones_n + 1))
    trips = rng.uniform(20.0, 120.0, (zones_n, zones_n))
    np.fill_diagonal(trips, 0.0)
    return ModelInput(network=net, zones=zones, demand=ExplicitDemand(trips),
                      assignment=AssignmentSettings(relative_gap=1e-9, max_iterations=1000))


@pytest.mark.parametrize("seed", range(12))
def test_random_street_networks_reach_the_same_equilibrium(seed: int) -> None:
    from dataclasses import replace

    from tests.unit.model.independent import beckmann

    model = _random_streets(seed)
    graph = build_graph(model.network, model.zones, CostParameters())
    merged = contract(graph)
    assert merged is not None and merged.graph.n_links < graph.n_links
    assert isinstance(model.demand, ExplicitDemand)
    trips = model.demand.trips
    result = run_model(model)
    assert result.converged
    flows = result.links.flow
    assert relative_gap(model.network, model.zones, trips, flows) <= 1e-8
    # Frank-Wolfe never merges links: the same objective, reached another way.
    bfw = replace(model.assignment, algorithm="bfw", relative_gap=1e-6, max_iterations=20000)
    other = run_model(replace(model, assignment=bfw)).links.flow
    assert beckmann(model.network, flows) <= beckmann(model.network, other) * (1 + 1e-9)
    assert beckmann(model.network, flows) == pytest.approx(beckmann(model.network, other),
                                                           rel=1e-5)
