"""Shortest paths (Dijkstra, 4-ary heap) honouring first-thru-node, and all-or-nothing loads.

A path may end at a blocked (centroid) node but never leave one, except the origin itself.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
from numpy.typing import NDArray

from simulation_worker.model.graph import Graph
from simulation_worker.model.lanes import lanes, run_lanes
from simulation_worker.model.memory import normal_pages
from simulation_worker.model.network import FloatArray

I32 = NDArray[np.int32]
U8 = NDArray[np.uint8]


@nb.njit(cache=True, nogil=True)
def dijkstra(origin: int, fwd_start: I32, fwd_link: I32, head: I32, cost: FloatArray,
             blocked: NDArray[np.bool_], dist: FloatArray, pred: I32, order: I32, place: I32,
             heap_key: FloatArray, heap_node: I32) -> int:
    """Fill ``dist``, ``pred`` (link into node, -1 at root/unreached) and settle ``order``.

    ``place`` (one per node: its heap position, -1 before it enters, -2 once settled) and the
    heap (``heap_key``, ``heap_node``: one entry per node at least) are work arrays. Returns the
    number of reached nodes (the valid prefix of ``order``, a topological order of the tree).

    The heap holds each node once and lowers its key in place (decision 0133). Blocked nodes
    other than the origin (centroids) never enter it: no path leaves them, so nothing waits
    on their settling. Their labels are kept up to date as links reach them (from the back of
    ``order``), and they end the order, after every node they hang from.
    """
    n = dist.shape[0]
    for v in range(n):
        dist[v] = np.inf
        pred[v] = -1
        place[v] = -1
    size = 1
    heap_key[0] = 0.0
    heap_node[0] = origin
    place[origin] = 0
    dist[origin] = 0.0
    settled = 0
    leaves = 0  # blocked nodes reached, kept at order[n - leaves:]
    while size > 0:
        key = heap_key[0]
        u = heap_node[0]
        place[u] = -2
        size -= 1
        if size > 0:
            _sift_down(heap_key, heap_node, place, size, heap_key[size], heap_node[size])
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
                if blocked[v] and v != origin:
                    if place[v] == -1:
                        place[v] = -3  # reached: counted once
                        leaves += 1
                        order[n - leaves] = v
                    continue
                if place[v] == -1:
                    _sift_up(heap_key, heap_node, place, size, nd, v)
                    size += 1
                elif place[v] >= 0:  # (a settled node's label never falls)
                    _sift_up(heap_key, heap_node, place, place[v], nd, v)
    for t in range(leaves):  # to just after the settled nodes (never onto an unread one)
        order[settled + t] = order[n - leaves + t]
    return settled + leaves


# The heap is 4-ary: half as deep as a binary heap, and a node's children share a cache line.
# A pass of shortest paths over a 24k-link city took 0.85 s instead of 1.26 s (decision 0117).
_ARITY = 4


@nb.njit(cache=True, nogil=True, inline="always")
def _sift_up(keys: FloatArray, nodes: I32, place: I32, i: int, key: float, node: int) -> None:
    """Put ``node`` with ``key`` at heap position ``i`` (a new last entry, or its own entry
    whose key fell) and move it up to where it belongs."""
    while i > 0:
        parent = (i - 1) // _ARITY
        if keys[parent] <= key:
            break
        keys[i] = keys[parent]
        nodes[i] = nodes[parent]
        place[nodes[i]] = i
        i = parent
    keys[i] = key
    nodes[i] = node
    place[node] = i


@nb.njit(cache=True, nogil=True, inline="always")
def _sift_down(keys: FloatArray, nodes: I32, place: I32, size: int, key: float, node: int
               ) -> None:
    i = 0
    while True:
        first = _ARITY * i + 1
        if first >= size:
            break
        child = first
        least = keys[first]
        for k in range(first + 1, min(first + _ARITY, size)):
            if keys[k] < least:
                least = keys[k]
                child = k
        if least >= key:
            break
        keys[i] = least
        nodes[i] = nodes[child]
        place[nodes[i]] = i
        i = child
    keys[i] = key
    nodes[i] = node
    place[node] = i


class Work(NamedTuple):
    """Per-lane work arrays of the shortest-path kernel."""

    dist: FloatArray
    pred: I32
    order: I32
    place: I32
    heap_key: FloatArray
    heap_node: I32
    along: FloatArray


def work(lanes: int, n_nodes: int) -> Work:
    """Work arrays for ``lanes`` lanes."""
    nodes = (lanes, n_nodes)
    return Work(np.zeros(nodes), np.zeros(nodes, dtype=np.int32),
                np.zeros(nodes, dtype=np.int32), np.zeros(nodes, dtype=np.int32),
                np.zeros(nodes), np.zeros(nodes, dtype=np.int32), np.zeros(nodes))


class Trees(NamedTuple):
    """Origin-based bushes, one row per origin (Algorithm B's state; ``trees_lane`` starts
    each as its origin's shortest-path tree loaded all-or-nothing): the flows on the bush's
    links (``bush_flow[i, e]`` on link ``links[i, e]``), nodes in topological order and their
    count, and the bush's links grouped by head in that order, and their count. A bush is kept
    as a list, its flows beside it, so a sweep reads its data in order (decision 0130)."""

    bush_flow: FloatArray
    topo: I32
    topo_len: I32
    links: I32
    links_len: I32


NO_TREES = Trees(np.zeros((0, 0)),
                 np.zeros((0, 0), dtype=np.int32), np.zeros(0, dtype=np.int32),
                 np.zeros((0, 0), dtype=np.int32), np.zeros(0, dtype=np.int32))
NO_SUMS = np.zeros((0, 0))
NO_PREDS = np.zeros((0, 0), dtype=np.int32)


@nb.njit(cache=True, nogil=True)
def trees_lane(lane: int, lanes: int, origins: I32, zone_node: I32, od: FloatArray,
               fwd_start: I32, fwd_link: I32, head: I32, tail: I32, cost: FloatArray,
               other: FloatArray, blocked: NDArray[np.bool_], w: Work, out: FloatArray,
               along: FloatArray, trees: Trees, tree_pred: I32) -> None:
    """Shortest paths from one lane's origins (origin i in lane i % lanes).

    Always: ``out[i, z]``, the least cost from origin i to zone z. If ``along`` has rows: the
    sum of ``other`` along those paths. If ``trees`` has rows: the tree, loaded all-or-nothing
    with ``od[origins[i]]``, as origin i's initial bush. If ``tree_pred`` has rows: row i is
    the tree (each node's link from its parent, -1 at the root and unreached nodes). One kernel
    for the gap, the skims and the bushes' start, so Dijkstra is compiled once (0113).
    """
    dist = w.dist[lane]
    pred = w.pred[lane]
    order = w.order[lane]
    acc = w.along[lane]
    sums = along.shape[0] > 0
    bushes = trees.topo.shape[0] > 0
    keep = tree_pred.shape[0] > 0
    for i in range(lane, origins.shape[0], lanes):
        settled = dijkstra(zone_node[origins[i]], fwd_start, fwd_link, head, cost, blocked,
                           dist, pred, order, w.place[lane], w.heap_key[lane], w.heap_node[lane])
        for z in range(zone_node.shape[0]):
            out[i, z] = dist[zone_node[z]]
        if keep:  # a loop: a slice assignment doubles this kernel's compile time
            row = tree_pred[i]
            for v in range(row.shape[0]):
                row[v] = pred[v]
        if sums:
            for v in range(acc.shape[0]):
                acc[v] = np.inf
            acc[order[0]] = 0.0
            for k in range(1, settled):
                v = order[k]
                acc[v] = acc[tail[pred[v]]] + other[pred[v]]
            for z in range(zone_node.shape[0]):
                along[i, z] = acc[zone_node[z]]
        if bushes:
            _load_tree(i, origins[i], settled, zone_node, od, tail, pred, order, acc, trees)


@nb.njit(cache=True, nogil=True, inline="always")
def _load_tree(i: int, o: int, settled: int, zone_node: I32, od: FloatArray, tail: I32,
               pred: I32, order: I32, load: FloatArray, trees: Trees) -> None:
    row = trees.topo[i]
    links = trees.links[i]
    row[0] = order[0]
    for idx in range(1, settled):
        row[idx] = order[idx]
        links[idx - 1] = pred[order[idx]]  # a tree: each node's one bush link
    trees.topo_len[i] = settled
    trees.links_len[i] = settled - 1
    for v in range(load.shape[0]):
        load[v] = 0.0
    for z in range(zone_node.shape[0]):
        load[zone_node[z]] += od[o, z]
    bf = trees.bush_flow[i]
    for idx in range(settled - 1, 0, -1):
        v = order[idx]
        a = pred[v]
        bf[idx - 1] = load[v]  # on links[idx - 1] = a
        load[tail[a]] += load[v]


def shortest_paths(graph: Graph, origins: I32, cost: FloatArray, other: FloatArray | None = None,
                   od: FloatArray | None = None, trees: Trees = NO_TREES,
                   tree_pred: I32 = NO_PREDS) -> tuple[FloatArray, FloatArray]:
    """Least costs from ``origins`` (zone indices) to every zone, the sums of ``other`` along
    those paths (empty without ``other``), with ``trees`` and ``od`` the initial bushes, and
    with ``tree_pred`` (origins x nodes) the trees themselves; the lanes run in parallel."""
    count = min(lanes(), max(1, len(origins)))
    zones = len(graph.zone_node)
    with normal_pages():
        w = work(count, graph.n_nodes)
        out = np.empty((len(origins), zones))
        along = np.empty((len(origins), zones)) if other is not None else NO_SUMS
    cost = np.ascontiguousarray(cost, dtype=np.float64)  # one compiled signature
    run_lanes(trees_lane, count, origins, graph.zone_node,
              np.ascontiguousarray(od, dtype=np.float64) if od is not None else NO_SUMS,
              graph.fwd_start, graph.fwd_link, graph.head, graph.tail, cost,
              np.ascontiguousarray(other, dtype=np.float64) if other is not None else cost,
              graph.blocked, w, out, along, trees, tree_pred)
    return out, along


@nb.njit(cache=True, nogil=True)
def _aon(origins: I32, zone_node: I32, od: FloatArray, fwd_start: I32, fwd_link: I32,
         head: I32, tail: I32, cost: FloatArray, blocked: NDArray[np.bool_], n_nodes: int,
         ) -> tuple[FloatArray, float]:
    flows = np.zeros(head.shape[0])
    dist = np.empty(n_nodes)
    pred = np.empty(n_nodes, dtype=np.int32)
    order = np.empty(n_nodes, dtype=np.int32)
    place = np.empty(n_nodes, dtype=np.int32)
    heap_key = np.empty(n_nodes)
    heap_node = np.empty(n_nodes, dtype=np.int32)
    node_load = np.zeros(n_nodes)
    spt = 0.0
    for i in range(origins.shape[0]):
        o = origins[i]
        settled = dijkstra(zone_node[o], fwd_start, fwd_link, head, cost, blocked, dist, pred,
                           order, place, heap_key, heap_node)
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
    return shortest_paths(graph, origins, cost)[0]


def all_or_nothing(graph: Graph, cost: FloatArray, od: FloatArray) -> tuple[FloatArray, float]:
    """All-or-nothing link flows at ``cost`` and the total shortest-path cost sum(d * mincost)."""
    flows, spt = _aon(origins_with_demand(od), graph.zone_node, od, graph.fwd_start,
                      graph.fwd_link, graph.head, graph.tail, cost, graph.blocked, graph.n_nodes)
    return flows, float(spt)


def relative_gap(graph: Graph, flows: FloatArray, cost: FloatArray, od: FloatArray) -> float:
    """(total cost - total shortest-path cost) / total cost at the given flows and costs."""
    origins = origins_with_demand(od)
    return gap_of(flows, cost, od[origins], zone_costs(graph, cost, origins))


def gap_of(flows: FloatArray, cost: FloatArray, demand: FloatArray, mincost: FloatArray
           ) -> float:
    """The relative gap from the origins' demand rows and least costs to every zone."""
    spt = float(np.sum(demand[demand > 0] * mincost[demand > 0]))
    tstt = float(flows @ cost)
    return (tstt - spt) / tstt if tstt > 0 else 0.0


def zone_costs_and_sums(
    graph: Graph, cost: FloatArray, other: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Least-cost zone-to-zone costs, and the sum of ``other`` along those least-cost paths."""
    origins = np.arange(len(graph.zone_node), dtype=np.int32)
    return shortest_paths(graph, origins, cost, other)
