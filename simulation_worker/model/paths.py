"""Shortest paths (Dijkstra, binary heap) honouring first-thru-node, and all-or-nothing loads.

A path may end at a blocked (centroid) node but never leave one, except the origin itself.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
from numpy.typing import NDArray

from simulation_worker.model.graph import Graph
from simulation_worker.model.lanes import lanes, run_lanes
from simulation_worker.model.network import FloatArray

I32 = NDArray[np.int32]
U8 = NDArray[np.uint8]


@nb.njit(cache=True, nogil=True)
def dijkstra(origin: int, fwd_start: I32, fwd_link: I32, head: I32, cost: FloatArray,
             blocked: NDArray[np.bool_], dist: FloatArray, pred: I32, order: I32, done: U8,
             heap_key: FloatArray, heap_node: I32) -> int:
    """Fill ``dist``, ``pred`` (link into node, -1 at root/unreached) and settle ``order``.

    ``done`` (one per node) and the heap (``heap_key``, ``heap_node``: one more than the links)
    are work arrays. Returns the number of settled nodes (the valid prefix of ``order``).
    """
    for v in range(dist.shape[0]):
        dist[v] = np.inf
        pred[v] = -1
        done[v] = 0
    size = 1
    heap_key[0] = 0.0
    heap_node[0] = origin
    dist[origin] = 0.0
    settled = 0
    while size > 0:
        key = heap_key[0]
        u = heap_node[0]
        size -= 1
        if size > 0:
            _sift_down(heap_key, heap_node, size, heap_key[size], heap_node[size])
        if done[u] or key > dist[u]:
            continue
        done[u] = 1
        order[settled] = u
        settled += 1
        if blocked[u] and u != origin:
            continue
        for k in range(fwd_start[u], fwd_start[u + 1]):
            a = fwd_link[k]
            v = head[a]
            nd = key + cost[a]
            if nd < dist[v]:
                dist[v] = nd
                pred[v] = a
                size = _push(heap_key, heap_node, size, nd, v)
    return settled


@nb.njit(cache=True, nogil=True)
def _push(keys: FloatArray, nodes: I32, size: int, key: float, node: int) -> int:
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= key:
            break
        keys[i] = keys[parent]
        nodes[i] = nodes[parent]
        i = parent
    keys[i] = key
    nodes[i] = node
    return size + 1


@nb.njit(cache=True, nogil=True)
def _sift_down(keys: FloatArray, nodes: I32, size: int, key: float, node: int) -> None:
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and keys[child + 1] < keys[child]:
            child += 1
        if keys[child] >= key:
            break
        keys[i] = keys[child]
        nodes[i] = nodes[child]
        i = child
    keys[i] = key
    nodes[i] = node


class Work(NamedTuple):
    """Per-lane work arrays of the shortest-path kernels."""

    dist: FloatArray
    pred: I32
    order: I32
    done: U8
    heap_key: FloatArray
    heap_node: I32
    along: FloatArray


def work(lanes: int, n_nodes: int, n_links: int) -> Work:
    """Work arrays for ``lanes`` lanes."""
    nodes, heap = (lanes, n_nodes), (lanes, n_links + 1)
    return Work(np.zeros(nodes), np.zeros(nodes, dtype=np.int32),
                np.zeros(nodes, dtype=np.int32), np.zeros(nodes, dtype=np.uint8),
                np.zeros(heap), np.zeros(heap, dtype=np.int32), np.zeros(nodes))


@nb.njit(cache=True, nogil=True)
def _zone_costs_lane(lane: int, lanes: int, origins: I32, zone_node: I32, fwd_start: I32,
                     fwd_link: I32, head: I32, tail: I32, cost: FloatArray, other: FloatArray,
                     blocked: NDArray[np.bool_], w: Work, out: FloatArray,
                     along: FloatArray) -> None:
    """Least-cost path costs from one lane's origins (origin i in lane i % lanes) to every
    zone; with a non-empty ``along``, also the sum of ``other`` along those paths."""
    dist = w.dist[lane]
    pred = w.pred[lane]
    order = w.order[lane]
    acc = w.along[lane]
    sums = along.shape[0] > 0
    for i in range(lane, origins.shape[0], lanes):
        settled = dijkstra(zone_node[origins[i]], fwd_start, fwd_link, head, cost, blocked,
                           dist, pred, order, w.done[lane], w.heap_key[lane], w.heap_node[lane])
        if sums:
            for v in range(acc.shape[0]):
                acc[v] = np.inf
            acc[order[0]] = 0.0
            for k in range(1, settled):
                v = order[k]
                a = pred[v]
                acc[v] = acc[tail[a]] + other[a]
        for z in range(zone_node.shape[0]):
            out[i, z] = dist[zone_node[z]]
            if sums:
                along[i, z] = acc[zone_node[z]]


def _zone_costs(graph: Graph, origins: I32, cost: FloatArray, other: FloatArray | None
                ) -> tuple[FloatArray, FloatArray]:
    count = min(lanes(), max(1, len(origins)))
    w = work(count, graph.n_nodes, graph.n_links)
    zones = len(graph.zone_node)
    out = np.empty((len(origins), zones))
    along = np.empty((len(origins), zones) if other is not None else (0, 0))
    run_lanes(_zone_costs_lane, count, origins, graph.zone_node, graph.fwd_start,
              graph.fwd_link, graph.head, graph.tail, cost,
              other if other is not None else cost, graph.blocked, w, out, along)
    return out, along


@nb.njit(cache=True)
def _aon(origins: I32, zone_node: I32, od: FloatArray, fwd_start: I32, fwd_link: I32,
         head: I32, tail: I32, cost: FloatArray, blocked: NDArray[np.bool_], n_nodes: int,
         ) -> tuple[FloatArray, float]:
    flows = np.zeros(head.shape[0])
    dist = np.empty(n_nodes)
    pred = np.empty(n_nodes, dtype=np.int32)
    order = np.empty(n_nodes, dtype=np.int32)
    done = np.empty(n_nodes, dtype=np.uint8)
    heap_key = np.empty(fwd_link.shape[0] + 1)
    heap_node = np.empty(fwd_link.shape[0] + 1, dtype=np.int32)
    node_load = np.zeros(n_nodes)
    spt = 0.0
    for i in range(origins.shape[0]):
        o = origins[i]
        settled = dijkstra(zone_node[o], fwd_start, fwd_link, head, cost, blocked, dist, pred,
                           order, done, heap_key, heap_node)
        node_load[:] = 0.0
        for z in range(zone_node.shape[0]):
            if od[o, z] > 0.0:
                node_load[zone_node[z]] += od[o, z]
                spt += od[o, z] * dist[zone_node[z]]
        for k in range(settled - 1, 0, -1):
            v = order[k]
            if node_load[v] > 0.0:
                a = pred[v]
                flows[a] += node_load[v]
                node_load[tail[a]] += node_load[v]
    return flows, spt


def origins_with_demand(od: FloatArray) -> I32:
    """Indices of zones with positive outgoing demand."""
    return np.flatnonzero(od.sum(axis=1) > 0).astype(np.int32)


def zone_costs(graph: Graph, cost: FloatArray, origins: I32 | None = None) -> FloatArray:
    """Least-cost path cost from each origin zone (default: all) to every zone."""
    if origins is None:
        origins = np.arange(len(graph.zone_node), dtype=np.int32)
    return _zone_costs(graph, origins, cost, None)[0]


def all_or_nothing(graph: Graph, cost: FloatArray, od: FloatArray) -> tuple[FloatArray, float]:
    """All-or-nothing link flows at ``cost`` and the total shortest-path cost sum(d * mincost)."""
    flows, spt = _aon(origins_with_demand(od), graph.zone_node, od, graph.fwd_start,
                      graph.fwd_link, graph.head, graph.tail, cost, graph.blocked, graph.n_nodes)
    return flows, float(spt)


def relative_gap(graph: Graph, flows: FloatArray, cost: FloatArray, od: FloatArray) -> float:
    """(total cost - total shortest-path cost) / total cost at the given flows and costs."""
    origins = origins_with_demand(od)
    mincost = zone_costs(graph, cost, origins)
    demand = od[origins]
    spt = float(np.sum(demand[demand > 0] * mincost[demand > 0]))
    tstt = float(flows @ cost)
    return (tstt - spt) / tstt if tstt > 0 else 0.0


def zone_costs_and_sums(
    graph: Graph, cost: FloatArray, other: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Least-cost zone-to-zone costs, and the sum of ``other`` along those least-cost paths."""
    origins = np.arange(len(graph.zone_node), dtype=np.int32)
    return _zone_costs(graph, origins, cost, np.ascontiguousarray(other, dtype=np.float64))
