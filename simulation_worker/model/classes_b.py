"""Multi-class Algorithm B: one bush per (origin, class) on shared congestion.

Every class k sees the generalized cost ``C[k, a] = t_a(X_a) + F[k, a]``: the travel time of the
link at the total PCE flow ``X = sum_k pce_k x_k``, plus the class's flow-independent cost
(``F[k, a] = inf`` on links the class may not use, so they never join its bushes and its
Dijkstra trees never reach over them). A bush holds vehicles of its class. A Newton shift of
``dx`` vehicles of class k between two bush segments changes the PCE flow by ``pce_k * dx``, so
the step is ``(c_max - c_min) / (pce_k * (sum t'_max + sum t'_min))``. Bushes are shifted one
after another (Gauss-Seidel, origin-major, classes in declared order), as in the single-class
``bush.py`` whose kernels these copy; with one class of PCE 1 and no bans every operation is the
single-class one, in the same order.

The kernels are separate from ``bush.py`` on purpose (docs/decisions/0124).
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
from numpy.typing import NDArray

from simulation_worker.model.costs import link_cost, link_derivative
from simulation_worker.model.network import FloatArray
from simulation_worker.model.paths import dijkstra

I32 = NDArray[np.int32]
U8 = NDArray[np.uint8]


class Links(NamedTuple):
    """BPR parameters of the graph links and the per-class fixed costs ``F`` (classes x links,
    inf where banned)."""

    t0: FloatArray
    b: FloatArray
    p: FloatArray
    cap: FloatArray
    fixed: FloatArray


class Scratch(NamedTuple):
    """Node work arrays, one row per lane (allocated once per assignment)."""

    lo: FloatArray
    hi: FloatArray
    lo_pred: I32
    hi_pred: I32
    pos: I32
    indeg: I32
    stack: I32
    mark: I32
    place: I32  # Dijkstra's heap positions
    heap_key: FloatArray  # Dijkstra's heap: one entry per node
    heap_node: I32


def scratch(lanes: int, n_nodes: int) -> Scratch:
    """Work arrays for ``lanes`` lanes."""
    shape = (lanes, n_nodes)
    return Scratch(np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=np.int32),
                   np.zeros(shape, dtype=np.int32), np.zeros(shape, dtype=np.int32),
                   np.zeros(shape, dtype=np.int32), np.zeros(shape, dtype=np.int32),
                   np.zeros(shape, dtype=np.int32), np.zeros(shape, dtype=np.int32),
                   np.zeros(shape), np.zeros(shape, dtype=np.int32))


@nb.njit(cache=True)
def class_costs(x: FloatArray, ln: Links, c: FloatArray, d: FloatArray) -> None:
    """Fill ``c`` (classes x links) and ``d`` (links) at PCE flows ``x``."""
    for a in range(x.shape[0]):
        for k in range(c.shape[0]):
            c[k, a] = link_cost(x[a], ln.t0[a], ln.b[a], ln.p[a], ln.cap[a], ln.fixed[k, a])
        d[a] = link_derivative(x[a], ln.t0[a], ln.b[a], ln.p[a], ln.cap[a])


@nb.njit(cache=True)
def pce_total(bush_class: I32, pce: FloatArray, bush_flow: FloatArray) -> FloatArray:
    """Total PCE flow of all bushes."""
    x = np.zeros(bush_flow.shape[1])
    for k in range(bush_flow.shape[0]):
        w = pce[bush_class[k]]
        row = bush_flow[k]
        for a in range(x.shape[0]):
            x[a] += w * row[a]
    return x


@nb.njit(cache=True, parallel=True)
def init_bushes(bush_origin: I32, bush_class: I32, zone_node: I32, od: FloatArray,
                fwd_start: I32, fwd_link: I32, head: I32, tail: I32, c: FloatArray,
                blocked: NDArray[np.bool_], in_bush: U8, bush_flow: FloatArray, topo: I32,
                topo_len: I32, reached: NDArray[np.bool_], s: Scratch) -> None:
    """Start every bush as its origin's shortest-path tree at its class's costs, loaded
    all-or-nothing with its class's trips (``od``: classes x zones x zones); ``reached[k, z]``
    records whether zone z is in bush k's tree."""
    lanes = s.lo.shape[0]
    for lane in nb.prange(lanes):
        dist = s.lo[lane]
        load = s.hi[lane]
        pred = s.lo_pred[lane]
        order = s.hi_pred[lane]
        for k in range(lane, bush_origin.shape[0], lanes):
            o = bush_origin[k]
            cls = bush_class[k]
            settled = dijkstra(zone_node[o], fwd_start, fwd_link, head, c[cls], blocked, dist,
                               pred, order, s.place[lane], s.heap_key[lane], s.heap_node[lane])
            topo[k, :settled] = order[:settled]
            topo_len[k] = settled
            load[:] = 0.0
            for z in range(zone_node.shape[0]):
                load[zone_node[z]] += od[cls, o, z]
                reached[k, z] = dist[zone_node[z]] < np.inf
            for idx in range(settled - 1, 0, -1):
                v = order[idx]
                a = pred[v]
                in_bush[k, a] = 1
                if load[v] > 0.0:
                    bush_flow[k, a] += load[v]
                    load[tail[a]] += load[v]


@nb.njit(cache=True)
def _labels(r: int, order: I32, nt: int, bwd_start: I32, bwd_link: I32, tail: I32,
            ib: U8, bf: FloatArray, c: FloatArray, used_only: bool,
            lo: FloatArray, lo_pred: I32, hi: FloatArray, hi_pred: I32) -> None:
    """Shortest (all bush links) and longest (used links, or all if not used_only) labels."""
    lo[:] = np.inf
    hi[:] = -np.inf
    lo_pred[:] = -1
    hi_pred[:] = -1
    lo[r] = 0.0
    hi[r] = 0.0
    for idx in range(1, nt):
        j = order[idx]
        for kk in range(bwd_start[j], bwd_start[j + 1]):
            a = bwd_link[kk]
            if ib[a] == 0:
                continue
            i = tail[a]
            if lo[i] + c[a] < lo[j]:
                lo[j] = lo[i] + c[a]
                lo_pred[j] = a
            if (not used_only or bf[a] > 0.0) and hi[i] + c[a] > hi[j]:
                hi[j] = hi[i] + c[a]
                hi_pred[j] = a


@nb.njit(cache=True)
def _topological_order(r: int, fwd_start: I32, fwd_link: I32, head: I32, ib: U8,
                       order: I32, indeg: I32) -> int:
    indeg[:] = 0
    for a in range(head.shape[0]):
        if ib[a]:
            indeg[head[a]] += 1
    order[0] = r
    count = 1
    front = 0
    while front < count:
        u = order[front]
        front += 1
        for kk in range(fwd_start[u], fwd_start[u + 1]):
            a = fwd_link[kk]
            if ib[a]:
                v = head[a]
                indeg[v] -= 1
                if indeg[v] == 0:
                    order[count] = v
                    count += 1
    return count


@nb.njit(cache=True)
def _reaches(src: int, dst: int, fwd_start: I32, fwd_link: I32, head: I32, ib: U8,
             stack: I32, mark: I32) -> bool:
    """Whether bush links lead from ``src`` to ``dst`` (depth-first)."""
    mark[:] = 0
    stack[0] = src
    mark[src] = 1
    size = 1
    while size > 0:
        size -= 1
        u = stack[size]
        if u == dst:
            return True
        for kk in range(fwd_start[u], fwd_start[u + 1]):
            a = fwd_link[kk]
            if ib[a] and mark[head[a]] == 0:
                mark[head[a]] = 1
                stack[size] = head[a]
                size += 1
    return False


# Shortcuts the longest-path rule refuses are checked for a cycle by a depth-first search, at
# most this many per bush and re-shaping (docs/decisions/0124).
_CYCLE_CHECKS = 32


@nb.njit(cache=True)
def _update_bush(r: int, order: I32, nt: int, fwd_start: I32, fwd_link: I32, bwd_start: I32,
                 bwd_link: I32, head: I32, tail: I32, blocked: NDArray[np.bool_], ib: U8,
                 bf: FloatArray, c: FloatArray, lo: FloatArray, lo_pred: I32, hi: FloatArray,
                 hi_pred: I32, indeg: I32, stack: I32, mark: I32) -> int:
    """Drop unused links, add shortcuts (never a link of infinite class cost).

    A shortcut (i, j) joins when ``hi_i < hi_j`` (it cannot close a cycle); one refused by that
    rule joins when no bush path leads from j back to i. The longest-path rule alone can
    refuse forever the only link of a cheaper path, when unused shortest-path links of the bush
    give its tail a long label: Winnipeg with two classes then stalled at gap 1.5e-6.
    """
    m = head.shape[0]
    _labels(r, order, nt, bwd_start, bwd_link, tail, ib, bf, c, False, lo, lo_pred, hi, hi_pred)
    for a in range(m):
        if ib[a] and bf[a] <= 0.0 and lo_pred[head[a]] != a:
            ib[a] = 0
            bf[a] = 0.0
    _labels(r, order, nt, bwd_start, bwd_link, tail, ib, bf, c, False, lo, lo_pred, hi, hi_pred)
    added = 0
    for a in range(m):
        i = tail[a]
        j = head[a]
        if ib[a] or (blocked[i] and i != r) or hi[i] == -np.inf or hi[j] == -np.inf:
            continue
        if lo[i] + c[a] < lo[j] - 1e-12 * lo[j] and hi[i] < hi[j]:
            ib[a] = 1
            added += 1
    checks = 0
    for a in range(m):
        if checks >= _CYCLE_CHECKS:
            break
        i = tail[a]
        j = head[a]
        if ib[a] or (blocked[i] and i != r) or hi[i] == -np.inf or hi[j] == -np.inf:
            continue
        if lo[i] + c[a] < lo[j] - 1e-12 * lo[j] and hi[i] >= hi[j]:
            checks += 1
            if not _reaches(j, i, fwd_start, fwd_link, head, ib, stack, mark):
                ib[a] = 1
                added += 1
    if added == 0:
        for a in range(m):
            i = tail[a]
            j = head[a]
            if ib[a] or (blocked[i] and i != r) or hi[i] == -np.inf or hi[j] == -np.inf:
                continue
            if hi[i] + c[a] < hi[j] - 1e-12 * hi[j]:
                ib[a] = 1
                added += 1
    return _topological_order(r, fwd_start, fwd_link, head, ib, order, indeg)


@nb.njit(cache=True, parallel=True)
def reshape_bushes(bush_origin: I32, bush_class: I32, zone_node: I32, fwd_start: I32,
                   fwd_link: I32, bwd_start: I32, bwd_link: I32, head: I32, tail: I32,
                   blocked: NDArray[np.bool_], in_bush: U8, bush_flow: FloatArray, topo: I32,
                   topo_len: I32, c: FloatArray, s: Scratch) -> None:
    """Re-shape every bush at its class's current costs; lanes run them in parallel."""
    lanes = s.lo.shape[0]
    for lane in nb.prange(lanes):
        for k in range(lane, bush_origin.shape[0], lanes):
            topo_len[k] = _update_bush(zone_node[bush_origin[k]], topo[k], topo_len[k],
                                       fwd_start, fwd_link, bwd_start, bwd_link, head, tail,
                                       blocked, in_bush[k], bush_flow[k], c[bush_class[k]],
                                       s.lo[lane], s.lo_pred[lane], s.hi[lane],
                                       s.hi_pred[lane], s.indeg[lane], s.stack[lane],
                                       s.mark[lane])


@nb.njit(cache=True, inline="always")
def _move(j: int, stop: int, pred: I32, dx: float, w: float, tail: I32, bf: FloatArray,
          x: FloatArray, c: FloatArray, d: FloatArray, ln: Links) -> None:
    v = j
    while v != stop:
        a = pred[v]
        bf[a] = max(bf[a] + dx, 0.0)
        x[a] = max(x[a] + w * dx, 0.0)
        for k in range(c.shape[0]):
            c[k, a] = link_cost(x[a], ln.t0[a], ln.b[a], ln.p[a], ln.cap[a], ln.fixed[k, a])
        d[a] = link_derivative(x[a], ln.t0[a], ln.b[a], ln.p[a], ln.cap[a])
        v = tail[a]


@nb.njit(cache=True)
def _shift_pass(r: int, cls: int, w: float, order: I32, nt: int, bwd_start: I32,
                bwd_link: I32, tail: I32, ib: U8, bf: FloatArray, x: FloatArray, c: FloatArray,
                d: FloatArray, ln: Links, threshold: float, lo: FloatArray, lo_pred: I32,
                hi: FloatArray, hi_pred: I32, pos: I32) -> float:
    """One Newton sweep over a bush of class ``cls`` (PCE ``w``); returns the largest label
    difference."""
    cc = c[cls]
    _labels(r, order, nt, bwd_start, bwd_link, tail, ib, bf, cc, True, lo, lo_pred, hi,
            hi_pred)
    for idx in range(nt):
        pos[order[idx]] = idx
    worst = 0.0
    for idx in range(nt - 1, 0, -1):
        j = order[idx]
        if hi_pred[j] < 0 or hi_pred[j] == lo_pred[j]:
            continue
        diff = hi[j] - lo[j]
        worst = max(worst, diff)
        if diff <= threshold:
            continue
        p = tail[lo_pred[j]]
        q = tail[hi_pred[j]]
        while p != q:
            if pos[p] > pos[q]:
                p = tail[lo_pred[p]]
            else:
                q = tail[hi_pred[q]]
        cmin = 0.0
        dmin = 0.0
        v = j
        while v != p:
            a = lo_pred[v]
            cmin += cc[a]
            dmin += d[a]
            v = tail[a]
        cmax = 0.0
        dmax = 0.0
        fmax = np.inf
        v = j
        while v != p:
            a = hi_pred[v]
            cmax += cc[a]
            dmax += d[a]
            fmax = min(fmax, bf[a])
            v = tail[a]
        gain = cmax - cmin
        if gain <= 0.0 or fmax <= 0.0:
            continue
        slope = w * (dmax + dmin)
        dx = gain / slope if slope > 0.0 else fmax
        dx = min(dx, fmax)
        _move(j, p, hi_pred, -dx, w, tail, bf, x, c, d, ln)
        _move(j, p, lo_pred, dx, w, tail, bf, x, c, d, ln)
    return worst


@nb.njit(cache=True)
def shift_flows(bush_origin: I32, bush_class: I32, pce: FloatArray, zone_node: I32,
                bwd_start: I32, bwd_link: I32, tail: I32, ln: Links, in_bush: U8,
                bush_flow: FloatArray, topo: I32, topo_len: I32, x: FloatArray, c: FloatArray,
                d: FloatArray, passes: int, threshold: float, s: Scratch) -> None:
    """Up to ``passes`` Newton sweeps per bush, bush after bush (Gauss-Seidel)."""
    for k in range(bush_origin.shape[0]):
        cls = bush_class[k]
        for _ in range(passes):
            worst = _shift_pass(zone_node[bush_origin[k]], cls, pce[cls], topo[k], topo_len[k],
                                bwd_start, bwd_link, tail, in_bush[k], bush_flow[k], x, c, d,
                                ln, threshold, s.lo[0], s.lo_pred[0], s.hi[0], s.hi_pred[0],
                                s.pos[0])
            if worst <= threshold:
                break


@nb.njit(cache=True)
def class_flows(bush_class: I32, bush_flow: FloatArray, n_classes: int) -> FloatArray:
    """Vehicle flows per class (classes x links)."""
    out = np.zeros((n_classes, bush_flow.shape[1]))
    for k in range(bush_flow.shape[0]):
        row = out[bush_class[k]]
        flows = bush_flow[k]
        for a in range(row.shape[0]):
            row[a] += flows[a]
    return out


@nb.njit(cache=True)
def select_on_bushes(bush_origin: I32, bush_class: I32, zone_node: I32, od: FloatArray,
                     fwd_start: I32, fwd_link: I32, bwd_start: I32, bwd_link: I32, head: I32,
                     tail: I32, in_bush: U8, bush_flow: FloatArray, topo: I32, topo_len: I32,
                     bits: I32, full: I32, n_classes: int) -> tuple[FloatArray, FloatArray]:
    """Select-link on the bushes, assuming flow leaves a node in proportion to the bush flows
    on its outgoing links whatever way it came (docs/decisions/0125).

    A selection's state along a path is the set of its links passed so far (``bits[s, a]``:
    the bit link a sets; one bit for a whole ``or`` set), and a trip is selected when it ends in
    state ``full[s]``. Forward, in topological order: the share of the flow reaching each node
    in each state; backward: the probability that the rest of the path, from a node in a
    state, ends selected. Returns matrices (classes x selections x zones x zones) and link
    flows (classes x selections x links) of the selected demand.
    """
    n_sel, m = bits.shape[0], head.shape[0]
    n_zones, n = zone_node.shape[0], topo.shape[1]
    matrix = np.zeros((n_classes, n_sel, n_zones, n_zones))
    flows = np.zeros((n_classes, n_sel, m))
    n_states = 0
    for s in range(n_sel):
        n_states = max(n_states, full[s] + 1)
    share = np.zeros((n, n_states))
    rest = np.zeros((n, n_states))
    inflow = np.zeros(n)
    outflow = np.zeros(n)
    ends = np.zeros(n)
    for k in range(bush_origin.shape[0]):
        o, cls, nt = bush_origin[k], bush_class[k], topo_len[k]
        ib, bf, order = in_bush[k], bush_flow[k], topo[k]
        r = zone_node[o]
        for idx in range(nt):
            v = order[idx]
            inflow[v] = 0.0
            outflow[v] = 0.0
            ends[v] = 0.0
        for z in range(n_zones):
            if zone_node[z] != r:
                ends[zone_node[z]] += od[cls, o, z]
        for idx in range(nt):
            v = order[idx]
            for kk in range(bwd_start[v], bwd_start[v + 1]):
                a = bwd_link[kk]
                if ib[a] and bf[a] > 0.0:
                    inflow[v] += bf[a]
                    outflow[tail[a]] += bf[a]
        for s in range(n_sel):
            states = full[s] + 1
            for idx in range(nt):
                v = order[idx]
                share[v, :states] = 0.0
                rest[v, :states] = 0.0
            share[r, 0] = 1.0
            for idx in range(1, nt):
                v = order[idx]
                if inflow[v] <= 0.0:
                    continue
                for kk in range(bwd_start[v], bwd_start[v + 1]):
                    a = bwd_link[kk]
                    if ib[a] == 0 or bf[a] <= 0.0:
                        continue
                    i = tail[a]
                    for st in range(states):
                        if share[i, st] > 0.0:
                            share[v, st | bits[s, a]] += bf[a] * share[i, st]
                for st in range(states):
                    share[v, st] /= inflow[v]
            for idx in range(nt - 1, -1, -1):
                v = order[idx]
                through = ends[v] + outflow[v]
                if through <= 0.0:
                    continue
                rest[v, full[s]] = ends[v] / through
                for kk in range(fwd_start[v], fwd_start[v + 1]):
                    a = fwd_link[kk]
                    if ib[a] == 0 or bf[a] <= 0.0:
                        continue
                    j = head[a]
                    for st in range(states):
                        rest[v, st] += bf[a] / through * rest[j, st | bits[s, a]]
            for z in range(n_zones):
                v = zone_node[z]
                if v != r and od[cls, o, z] > 0.0:
                    matrix[cls, s, o, z] += od[cls, o, z] * share[v, full[s]]
            for idx in range(1, nt):
                v = order[idx]
                for kk in range(bwd_start[v], bwd_start[v + 1]):
                    a = bwd_link[kk]
                    if ib[a] == 0 or bf[a] <= 0.0:
                        continue
                    i = tail[a]
                    part = 0.0
                    for st in range(states):
                        if share[i, st] > 0.0:
                            part += share[i, st] * rest[v, st | bits[s, a]]
                    flows[cls, s, a] += bf[a] * part
    return matrix, flows
