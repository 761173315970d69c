"""Checks that do not use the solver's own code: scipy shortest paths and a numpy objective."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from simulation_worker.model import Network, Zone


def bpr_time(net: Network, flows: np.ndarray) -> np.ndarray:
    """t0 * (1 + b * (x / c) ** p), written out again for the tests."""
    congested = np.where(net.bpr_b > 0, net.bpr_b * (flows / net.capacity) ** net.bpr_power, 0.0)
    return np.asarray(net.free_flow_time * (1.0 + congested))


def fixed_cost(net: Network, toll_factor: float = 0.0, distance_factor: float = 0.0
               ) -> np.ndarray:
    """The flow-independent part of each link's generalized cost (TNTP's definition)."""
    return np.asarray(toll_factor * net.toll + distance_factor * net.length, dtype=float)


def beckmann(net: Network, flows: np.ndarray, fixed: np.ndarray | None = None) -> float:
    """Sum of the integrals of the BPR time (plus the ``fixed`` cost) from 0 to each link's
    flow."""
    p = net.bpr_power
    term = np.where(net.bpr_b > 0,
                    net.bpr_b * net.capacity / (p + 1.0) * (flows / net.capacity) ** (p + 1.0),
                    0.0)
    extra = 0.0 if fixed is None else float(fixed @ flows)
    return float(np.sum(net.free_flow_time * (flows + term))) + extra


def relative_gap(net: Network, zones: tuple[Zone, ...], trips: np.ndarray,
                 flows: np.ndarray, fixed: np.ndarray | None = None) -> float:
    """(TSTT - SPTT) / TSTT with scipy Dijkstra at the final costs (BPR time plus ``fixed``),
    honouring first-thru-node.

    Every centroid below the first thru node is split into a source copy (outgoing links only)
    and a sink copy (incoming links only), so that no path can pass through a centroid.
    """
    open_ = net.link_open
    cost = (bpr_time(net, flows) + (0.0 if fixed is None else fixed))[open_]
    ids = {int(n): i for i, n in enumerate(net.node_ids)}
    n = len(ids)
    tails = np.array([ids[int(a)] for a in net.link_from[open_]])
    heads = np.array([ids[int(b)] for b in net.link_to[open_]])
    blocked = net.node_ids < net.first_thru_node
    # A blocked node's incoming links go to its sink copy n + index.
    heads = np.where(blocked[heads], n + heads, heads)
    # Zero-cost links are kept by giving them a tiny positive weight (csgraph drops zeros).
    weights = np.maximum(cost, 1e-300)
    # Of parallel links only the cheapest counts (a sparse matrix would add their costs up).
    order = np.lexsort((weights, heads, tails))
    tails, heads, weights = tails[order], heads[order], weights[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (tails[1:] != tails[:-1]) | (heads[1:] != heads[:-1])
    graph = sp.csr_matrix((weights[first], (tails[first], heads[first])), shape=(2 * n, 2 * n))
    centroid = np.array([ids[z.centroid] for z in zones])
    targets = np.where(blocked[centroid], n + centroid, centroid)
    dist = dijkstra(graph, directed=True, indices=centroid)[:, targets]
    demand = trips > 0
    sptt = float(np.sum(trips[demand] * dist[demand]))
    tstt = float(flows[open_] @ cost)
    return (tstt - sptt) / tstt
