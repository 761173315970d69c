"""Compact array form of the open network that the numba kernels work on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulation_worker.model.errors import UnknownNodeError
from simulation_worker.model.network import (
    CostParameters,
    FloatArray,
    Network,
    Zone,
    validate_costs,
)

I32 = NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class Graph:
    """Open links of a network as 0-based arrays, with forward and backward stars (CSR)."""

    n_nodes: int
    link_index: NDArray[np.int64]  # position of each graph link in the Network's link arrays
    # (graph links are ordered by tail node, not in the Network's order)
    tail: I32
    head: I32
    fwd_start: I32
    fwd_link: I32
    bwd_start: I32
    bwd_link: I32
    free_flow_time: FloatArray
    bpr_b: FloatArray
    bpr_power: FloatArray
    capacity: FloatArray
    fixed_cost: FloatArray  # toll_factor * toll + distance_factor * length
    blocked: NDArray[np.bool_]  # centroid nodes no path may pass through
    zone_node: I32

    @property
    def n_links(self) -> int:
        return int(self.tail.shape[0])


def node_positions(net: Network, ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """0-based positions of node ``ids`` in ``net.node_ids`` (ids must exist)."""
    order = np.argsort(net.node_ids, kind="stable")
    sorted_ids = net.node_ids[order]
    where = np.searchsorted(sorted_ids, ids)
    where = np.minimum(where, len(sorted_ids) - 1)
    bad = np.flatnonzero(sorted_ids[where] != ids)
    if bad.size:
        raise UnknownNodeError(f"unknown node {ids[bad[0]]}")
    return np.asarray(order[where], dtype=np.int64)


def star(keys: I32, n: int) -> tuple[I32, I32]:
    order = np.argsort(keys, kind="stable").astype(np.int32)
    start = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(keys, minlength=n), out=start[1:])
    return start, order


def build_graph(net: Network, zones: tuple[Zone, ...], costs: CostParameters) -> Graph:
    """Index the open links of ``net`` and the zone centroids for the kernels."""
    validate_costs(costs)
    link_index = np.flatnonzero(net.link_open).astype(np.int64)
    tail = node_positions(net, net.link_from[link_index]).astype(np.int32)
    # Links in tail order: a node's outgoing links are adjacent, so the forward star walks
    # memory in order (shortest paths ~18 % faster on a 28k-link city; decision 0116).
    by_tail = np.argsort(tail, kind="stable")
    link_index, tail = link_index[by_tail], tail[by_tail]
    head = node_positions(net, net.link_to[link_index]).astype(np.int32)
    n = net.n_nodes
    fwd_start, fwd_link = star(tail, n)
    bwd_start, bwd_link = star(head, n)
    centroids = np.array([z.centroid for z in zones], dtype=np.int64)
    fixed = costs.toll_factor * net.toll + costs.distance_factor * net.length
    return Graph(
        n_nodes=n,
        link_index=link_index,
        tail=tail,
        head=head,
        fwd_start=fwd_start,
        fwd_link=fwd_link,
        bwd_start=bwd_start,
        bwd_link=bwd_link,
        free_flow_time=net.free_flow_time[link_index].copy(),
        bpr_b=net.bpr_b[link_index].copy(),
        bpr_power=net.bpr_power[link_index].copy(),
        capacity=net.capacity[link_index].copy(),
        fixed_cost=np.asarray(fixed[link_index], dtype=np.float64),
        blocked=np.asarray(net.node_ids < net.first_thru_node),
        zone_node=node_positions(net, centroids).astype(np.int32),
    )
