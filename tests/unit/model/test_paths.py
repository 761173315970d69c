"""Dijkstra with first-thru-node: centroids are reached but never passed through, and never
enter the heap (decision 0117's addendum)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra as scipy_dijkstra

from simulation_worker.model import CostParameters, Zone, make_network
from simulation_worker.model.graph import Graph, build_graph
from simulation_worker.model.paths import dijkstra, work


def _street_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Random two-way streets between 60 intersections, 12 centroids (ids 1-12) each tied to
    one or two intersections, random costs with some zero-cost links."""
    rng = np.random.default_rng(seed)
    zones, nodes = 12, 60
    frm: list[int] = []
    to: list[int] = []
    streets = {tuple(sorted(int(n) for n in rng.choice(nodes, size=2, replace=False)))
               for _ in range(140)}  # distinct: scipy would add up parallel links
    for u, v in sorted(streets):
        frm += [u + zones + 1, v + zones + 1]
        to += [v + zones + 1, u + zones + 1]
    for z in range(1, zones + 1):
        for spot in rng.choice(nodes, size=int(rng.integers(1, 3)), replace=False):
            frm += [z, int(spot) + zones + 1]
            to += [int(spot) + zones + 1, z]
    m = len(frm)
    cost = np.where(rng.random(m) < 0.1, 0.0, rng.uniform(0.5, 5.0, m))
    net = make_network(np.array(frm), np.array(to), np.full(m, 1000.0), np.ones(m), cost,
                       bpr_b=0.0, first_thru_node=zones + 1)
    graph = build_graph(net, tuple(Zone(z, z, 1.0, 1.0) for z in range(1, zones + 1)),
                        CostParameters())
    return graph, graph.free_flow_time.copy()


def _expected(graph: Graph, cost: np.ndarray, origin: int) -> np.ndarray:
    """scipy's Dijkstra on a copy where links out of centroids other than the origin are gone."""
    keep = ~graph.blocked[graph.tail] | (graph.tail == origin)
    n = graph.n_nodes
    weights = np.maximum(cost[keep], 1e-300)  # csgraph drops explicit zeros
    matrix = sp.csr_matrix((weights, (graph.tail[keep], graph.head[keep])), shape=(n, n))
    dist = scipy_dijkstra(matrix, directed=True, indices=origin)
    return np.where(dist < 1e-200, 0.0, dist)  # undo the tiny weights of zero-cost links


@pytest.mark.parametrize("seed", range(8))
def test_labels_are_least_costs_and_the_order_is_a_topological_order_of_the_tree(
        seed: int) -> None:
    graph, cost = _street_network(seed)
    w = work(1, graph.n_nodes)
    for zone in range(len(graph.zone_node)):
        origin = int(graph.zone_node[zone])
        reached = dijkstra(origin, graph.fwd_start, graph.fwd_link, graph.head, cost,
                           graph.blocked, w.dist[0], w.pred[0], w.order[0], w.place[0],
                           w.heap_key[0], w.heap_node[0])
        dist, pred, order = w.dist[0], w.pred[0], w.order[0][:reached]
        expected = _expected(graph, cost, origin)
        assert np.allclose(dist, expected, rtol=1e-12, atol=1e-9)
        # Every reached node is listed once, the origin first, each after its tree parent.
        assert sorted(order.tolist()) == np.flatnonzero(np.isfinite(dist)).tolist()
        assert order[0] == origin and pred[origin] == -1
        position = np.empty(graph.n_nodes, dtype=np.int64)
        position[order] = np.arange(reached)
        others = order[1:]
        assert np.all(position[graph.tail[pred[others]]] < position[others])
        assert np.allclose(dist[others], dist[graph.tail[pred[others]]] + cost[pred[others]])
        # No tree path leaves a centroid other than the origin.
        parents = graph.tail[pred[others]]
        assert not np.any(graph.blocked[parents] & (parents != origin))
