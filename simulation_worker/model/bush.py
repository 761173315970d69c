"""Dial's Algorithm B: origin-based user-equilibrium assignment on acyclic bushes.

Each origin keeps a bush (an acyclic set of links carrying all its flow) and its own link flows,
as a list of the bush's links in topological order with their flows beside them (0130).
A pass walks the bush in reverse topological order and, at every node where the longest used
path costs more than the shortest path, moves flow between the two path segments since their
last common node with a Newton step. The bush is then re-shaped: unused links leave it (while
every node keeps an incoming link), shortcuts join it. Everything runs sequentially in a fixed
order, so results are deterministic.

Reference: R.B. Dial (2006), "A path-based user-equilibrium traffic assignment algorithm that
obviates path storage and enumeration", Transportation Research Part B 40(10), 917-936.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numba as nb
import numpy as np
from numpy.typing import NDArray

from simulation_worker.model import costs
from simulation_worker.model.costs import cost_and_derivative
from simulation_worker.model.graph import Graph
from simulation_worker.model.lanes import run_lanes
from simulation_worker.model.network import FloatArray
from simulation_worker.model.paths import Trees, shortest_paths

I32 = NDArray[np.int32]
U8 = NDArray[np.uint8]


class Scratch(NamedTuple):
    """Work arrays, one row per lane (a lane is a share of the origins run by one thread):
    node labels and predecessors, a sweep's due nodes and in-degrees. Allocated once per
    assignment, so the kernels allocate nothing."""

    lo: FloatArray
    hi: FloatArray
    lo_pred: I32
    hi_pred: I32
    due: I32  # per lane, one per node: the nodes a sweep will shift at
    indeg: I32
    worst: FloatArray  # per bush: largest label difference found by its last sweep
    # per bush: its origin's latest shortest-path tree (each node's link from its parent)
    tree_pred: I32
    dense: FloatArray  # per lane, one per link, zero between uses: flows while a list is rebuilt
    slots: I32  # per lane, one per link: the links into each node while a list is rebuilt
    member: U8  # per lane, one per link, zero between uses: a re-shaped bush's links
    seg_lo: I32  # per lane, one per node: a shift's two segments
    seg_hi: I32
    mark: U8  # per lane, one per node, zero between uses: a cycle check's visited nodes
    # per lane, class and link, -1 between uses: a link's position in the list of the bush of
    # that class from the origin a sweep is at (``_map_origin``), for its exchanges (0145)
    where: I32


class Classes(NamedTuple):
    """What a bush's class changes (0139): its class (one per bush), each class's PCE, and each
    class's flow-independent link costs (classes x links, inf on links it may not use). A bush
    holds vehicles of its class and sees the cost ``c[class]``, the link's time at the total
    PCE flow plus that fixed part."""

    bush_class: I32
    pce: FloatArray
    fixed: FloatArray
    # the order in which the bushes are re-shaped and shifted: origin after origin, each
    # origin's classes in turn (a class after the other stalled Winnipeg near gap 1.3e-6)
    sequence: I32
    # shortcuts refused by the longest-path rule that a re-shape checks for a cycle, per bush
    # (0124: several classes need them; one class never has, with the tree links of 0128)
    cycle_checks: int
    # per bush: link flows at or below this are rounding noise, not use (``noise``, 0140)
    noise: FloatArray
    # per bush and class: the bush of that class from the same origin, or -1 (no columns where
    # no exchange can pay, as with one class): the bushes a sweep exchanges flow with (0145)
    mates: I32


def one_class(g: Graph, trips: FloatArray) -> Classes:
    """One bush per origin, all of one class of PCE 1 paying the graph's fixed costs;
    ``trips``: each origin's trips."""
    count = trips.shape[0]
    return Classes(np.zeros(count, dtype=np.int32), np.ones(1),
                   np.ascontiguousarray(g.fixed_cost, dtype=np.float64).reshape(1, -1),
                   np.arange(count, dtype=np.int32), 0, noise(trips),
                   np.zeros((count, 0), dtype=np.int32))


def noise(trips: FloatArray) -> FloatArray:
    """Per bush, from its origin's trips: the link flow at or below which a bush's flow is
    rounding noise (decision 0140). Flows on a chain of links that should be equal differ by
    rounding, so emptying a path can leave 1e-16 on some of its links and none on the link
    before: such a crumb hangs from a node with no flow in, no sweep can move it, and it bars
    shortcuts from the bush for good (it stalled Chicago-Sketch near gap 6e-8)."""
    return np.ascontiguousarray(trips, dtype=np.float64) * _NOISE


def scratch(lanes: int, n_nodes: int, bushes: int, n_links: int, trees: bool = True,
            classes: int = 0) -> Scratch:
    """Work arrays for ``lanes`` lanes and ``bushes`` bushes; without ``trees``, no room for
    the origins' shortest-path trees (the re-shapes then add no tree links, 0128)."""
    shape = (lanes, n_nodes)
    return Scratch(np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=np.int32),
                   np.zeros(shape, dtype=np.int32), np.zeros(shape, dtype=np.int32),
                   np.zeros(shape, dtype=np.int32), np.full(bushes, np.inf),
                   np.full((bushes, n_nodes if trees else 0), -1, dtype=np.int32),
                   np.zeros((lanes, n_links)),
                   np.zeros((lanes, n_links), dtype=np.int32),
                   np.zeros((lanes, n_links), dtype=np.uint8), np.zeros(shape, dtype=np.int32),
                   np.zeros(shape, dtype=np.int32), np.zeros(shape, dtype=np.uint8),
                   np.full((lanes, classes, n_links), -1, dtype=np.int32))


def sum_flows(b: Trees, g: Graph, x: FloatArray, c: FloatArray, d: FloatArray,
              cl: Classes | None = None) -> None:
    """``x`` = the total (PCE) link flows of the bushes; ``c``, ``d`` = costs (classes x
    links) and derivatives. Without ``cl``, one class of PCE 1 (``one_class``)."""
    if cl is None:
        costs.sum_flows(b.bush_flow, b.links, b.links_len, x, c[0], d, g.free_flow_time,
                        g.bpr_b, g.bpr_power, g.capacity, g.fixed_cost)
        return
    _pce_sums(b.bush_flow, b.links, b.links_len, cl.bush_class, cl.pce, x, c, d,
              g.free_flow_time, g.bpr_b, g.bpr_power, g.capacity, cl.fixed)


@nb.njit(cache=True, nogil=True)
def _pce_sums(rows: FloatArray, links: I32, lens: I32, bush_class: I32, pce: FloatArray,
              x: FloatArray, c: FloatArray, d: FloatArray, t0: FloatArray, bb: FloatArray,
              pp: FloatArray, cap: FloatArray, fixed: FloatArray) -> None:
    """``costs.sum_flows`` for bushes of several classes: each row counts its class's PCE."""
    for a in range(x.shape[0]):
        x[a] = 0.0
    for k in range(rows.shape[0]):
        w = pce[bush_class[k]]
        row = rows[k]
        listed = links[k]
        for idx in range(lens[k]):
            x[listed[idx]] += w * row[idx]
    for a in range(x.shape[0]):
        for q in range(c.shape[0]):
            c[q, a], d[a] = cost_and_derivative(x[a], t0[a], bb[a], pp[a], cap[a], fixed[q, a])


def rows(b: Trees, start: int, stop: int) -> Trees:
    """Bushes ``start`` to ``stop`` (views)."""
    return Trees(b.bush_flow[start:stop], b.topo[start:stop], b.topo_len[start:stop],
                 b.links[start:stop], b.links_len[start:stop])


def bushes(count: int, n_nodes: int, n_links: int) -> Trees:
    """Empty state for ``count`` bushes (see ``Trees``), filled by ``init_bushes``. A row
    holds room for every link; only a bush's own links are ever written, so the memory
    touched follows the bushes' sizes."""
    return Trees(np.zeros((count, n_links)),
                 np.zeros((count, n_nodes), dtype=np.int32), np.zeros(count, dtype=np.int32),
                 np.zeros((count, n_links), dtype=np.int32), np.zeros(count, dtype=np.int32))


def init_bushes(graph: Graph, origins: I32, od: FloatArray, cost: FloatArray, b: Trees
                ) -> FloatArray:
    """Start every bush as its origin's shortest-path tree at ``cost`` loaded all-or-nothing
    (lanes in parallel). Returns the least costs from each origin to every zone."""
    return shortest_paths(graph, origins, cost, od=od, trees=b)[0]


@nb.njit(cache=True, nogil=True, inline="always")
def _reset_labels(r: int, lo: FloatArray, lo_pred: I32, hi: FloatArray, hi_pred: I32) -> None:
    """Labels before a labelling: none reached but the origin ``r`` (decision 0110: every
    node, so no label of an earlier bush survives)."""
    for v in range(lo.shape[0]):
        lo[v] = np.inf
        hi[v] = -np.inf
        lo_pred[v] = -1
        hi_pred[v] = -1
    lo[r] = 0.0
    hi[r] = 0.0


@nb.njit(cache=True, nogil=True)
def _labels(r: int, links: I32, nl: int, head: I32, tail: I32, bf: FloatArray,
            c: FloatArray, lo: FloatArray, lo_pred: I32, hi: FloatArray, hi_pred: I32,
            noise: float) -> int:
    """A re-shape's labels over the bush's ``nl`` links grouped by head in topological order:
    shortest over all bush links (predecessors: positions in that list), longest over the links
    that stay. A node's unused incoming links other than its shortest-path link leave the bush
    (and the list, which closes up with its flows ``bf``), so the longest labels are those of
    the re-shaped bush. A flow at or below ``noise`` is none: such a link leaves the bush with
    it (or, as the shortest-path link, stays with none). Returns the number of links the bush
    keeps. (A sweep's labels: ``_used_labels``.)"""
    _reset_labels(r, lo, lo_pred, hi, hi_pred)
    kept = 0
    first = 0
    while first < nl:  # one head at a time: its tails are final
        j = head[links[first]]
        stop = first
        while stop < nl and head[links[stop]] == j:
            a = links[stop]
            i = tail[a]
            if lo[i] + c[a] < lo[j]:
                lo[j] = lo[i] + c[a]
                lo_pred[j] = stop
            stop += 1
        for idx in range(first, stop):  # drop, then the longest label over what stays
            a = links[idx]
            flow = bf[idx] if bf[idx] > noise else 0.0
            if flow == 0.0 and lo_pred[j] != idx:
                continue
            hi[j] = max(hi[j], hi[tail[a]] + c[a])
            links[kept] = a
            bf[kept] = flow
            kept += 1
        first = stop
    return kept


@nb.njit(cache=True, nogil=True)
def _used_labels(r: int, links: I32, nl: int, head: I32, tail: I32, bf: FloatArray,
                 c: FloatArray, threshold: float, lo: FloatArray, lo_pred: I32, hi: FloatArray,
                 hi_pred: I32, due: I32, noise: float) -> tuple[int, float]:
    """A sweep's labels: shortest over all bush links, longest over used links (flow above
    ``noise``), predecessors as positions in the list. Lists in ``due``, in topological
    order, the nodes whose used paths differ and whose longest label exceeds the shortest by
    more than ``threshold``; returns their number and the largest such difference over all
    nodes."""
    _reset_labels(r, lo, lo_pred, hi, hi_pred)
    count = 0
    worst = 0.0
    last = -1  # the head of the links before: its labels are final once the head changes
    for idx in range(nl + 1):
        j = head[links[idx]] if idx < nl else -1
        if j != last:
            if last >= 0 and hi_pred[last] >= 0 and hi_pred[last] != lo_pred[last]:
                diff = hi[last] - lo[last]
                worst = max(worst, diff)
                if diff > threshold:
                    due[count] = last
                    count += 1
            last = j
        if idx == nl:
            break
        a = links[idx]
        i = tail[a]
        if lo[i] + c[a] < lo[j]:
            lo[j] = lo[i] + c[a]
            lo_pred[j] = idx
        if bf[idx] > noise and hi[i] + c[a] > hi[j]:
            hi[j] = hi[i] + c[a]
            hi_pred[j] = idx
    return count, worst


@nb.njit(cache=True, nogil=True)
def _reorder(r: int, fwd_start: I32, fwd_link: I32, head: I32, ib: U8, order: I32,
             indeg: I32, links: I32, nl: int, bf: FloatArray, first: I32, cursor: I32,
             slots: I32, dense: FloatArray) -> tuple[int, int]:
    """Kahn's topological order of the bush from ``r`` (``indeg``: every node's number of bush
    links in), and its link list in that order with the flows of the ``nl`` links listed
    before beside them (0 for new links); returns the numbers of nodes and links.

    Each link is filed under its head as Kahn's walk meets it (``first``, ``cursor`` and
    ``slots``: a node's share of the links, in the order of node ids); the list is then those
    shares in topological order. ``dense`` (one per link) is zero before and after."""
    for idx in range(nl):
        dense[links[idx]] = bf[idx]
    total = 0
    for v in range(indeg.shape[0]):
        first[v] = total
        cursor[v] = total
        total += indeg[v]
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
                slots[cursor[v]] = a
                cursor[v] += 1
                indeg[v] -= 1
                if indeg[v] == 0:
                    order[count] = v
                    count += 1
    listed = 0
    for idx in range(1, count):
        v = order[idx]
        for e in range(first[v], cursor[v]):
            a = slots[e]
            links[listed] = a
            bf[listed] = dense[a]
            dense[a] = 0.0
            listed += 1
    return count, listed


@nb.njit(cache=True, nogil=True)
def _update_bush(r: int, order: I32, nt: int, links: I32, nl: int, fwd_start: I32,
                 fwd_link: I32, head: I32, tail: I32,
                 blocked: NDArray[np.bool_], ib: U8, bf: FloatArray, c: FloatArray,
                 lo: FloatArray, lo_pred: I32, hi: FloatArray, hi_pred: I32, indeg: I32,
                 tree: I32, dense: FloatArray, slots: I32, checks: int, stack: I32,
                 seen: I32, mark: U8, noise: float) -> tuple[int, int]:
    """Drop unused links, add shortcuts; returns the new numbers of ordered nodes and of
    bush links.

    Shortcuts: links (i, j) with ``lo_i + c_ij < lo_j`` and ``hi_i < hi_j``, and the links of
    the origin's shortest-path tree at these costs (``tree``: each node's link from its
    parent) with ``hi_i < hi_j``, so a cheaper route of several links joins at once; if
    neither adds a link, those with ``hi_i + c_ij < hi_j``. Every added link has
    ``hi_i < hi_j`` and labels never fall along bush links: the bush stays acyclic.

    An unused link stays only if it is its head's shortest-path link, so every node stays
    reachable by its cheapest bush path (and its shortest label does not change; the longest
    labels are those of the bush after the drop). A bush that gains no link keeps its
    topological order (dropping links never invalidates one). ``ib`` (one per link, zero
    before and after) marks the bush's links meanwhile.

    With ``checks`` > 0 (several classes, decision 0139), up to that many shortcuts that the
    first rule refuses only for ``hi_i >= hi_j`` join when no bush path leads from j back to i
    (a depth-first search: ``stack``, ``seen`` and ``mark``, zero before and after): unused
    shortest-path links can give i a long label that bars the only link of a cheaper path
    for good (0124).
    """
    m = head.shape[0]
    nl = _labels(r, links, nl, head, tail, bf, c, lo, lo_pred, hi, hi_pred, noise)
    for idx in range(nl):
        ib[links[idx]] = 1
    for v in range(indeg.shape[0]):
        indeg[v] = 0
    added = 0
    longer = 0  # links the second rule would add
    refused = 0  # shortcuts refused for hi_i >= hi_j alone
    for a in range(m):
        i = tail[a]
        j = head[a]
        if ib[a]:
            indeg[j] += 1
            continue
        if (blocked[i] and i != r) or hi[i] == -np.inf or hi[j] == -np.inf:
            continue
        if lo[i] + c[a] < lo[j] - 1e-12 * lo[j]:
            if hi[i] < hi[j]:
                ib[a] = 1
                indeg[j] += 1
                added += 1
                continue
            refused += 1
        if hi[i] + c[a] < hi[j] - 1e-12 * hi[j]:
            longer += 1
    for idx in range(1, nt if tree.shape[0] > 0 else 0):  # the tree's links (0128)
        j = order[idx]
        a = tree[j]
        if a < 0 or ib[a]:
            continue
        i = tail[a]
        if (blocked[i] and i != r) or hi[i] == -np.inf:
            continue
        if hi[i] < hi[j]:
            ib[a] = 1
            indeg[j] += 1
            added += 1
    if checks > 0 and refused > 0:
        added += _acyclic_shortcuts(r, checks, fwd_start, fwd_link, head, tail, blocked, ib, c,
                                    lo, hi, indeg, stack, seen, mark)
    if added == 0 and longer > 0:  # only then: the second rule's links
        for a in range(m):
            i = tail[a]
            j = head[a]
            if ib[a] or (blocked[i] and i != r) or hi[i] == -np.inf or hi[j] == -np.inf:
                continue
            if hi[i] + c[a] < hi[j] - 1e-12 * hi[j]:
                ib[a] = 1
                indeg[j] += 1
                added += 1
    if added > 0:  # the predecessors are not needed any more: their arrays hold the shares
        nt, nl = _reorder(r, fwd_start, fwd_link, head, ib, order, indeg, links, nl, bf,
                          lo_pred, hi_pred, slots, dense)
    for idx in range(nl):
        ib[links[idx]] = 0
    return nt, nl


@nb.njit(cache=True, nogil=True)
def _acyclic_shortcuts(r: int, checks: int, fwd_start: I32, fwd_link: I32, head: I32,
                       tail: I32, blocked: NDArray[np.bool_], ib: U8, c: FloatArray,
                       lo: FloatArray, hi: FloatArray, indeg: I32, stack: I32, seen: I32,
                       mark: U8) -> int:
    """Add up to ``checks`` shortcuts ``lo_i + c_ij < lo_j`` with ``hi_i >= hi_j`` through
    which no bush path leads from j back to i; returns how many joined."""
    added = 0
    for a in range(head.shape[0]):
        if checks == 0:
            break
        i = tail[a]
        j = head[a]
        if ib[a] or (blocked[i] and i != r) or hi[i] == -np.inf or hi[j] == -np.inf:
            continue
        if not (lo[i] + c[a] < lo[j] - 1e-12 * lo[j] and hi[i] >= hi[j]):
            continue
        checks -= 1
        if not _reaches(j, i, fwd_start, fwd_link, head, ib, stack, seen, mark):
            ib[a] = 1
            indeg[j] += 1
            added += 1
    return added


@nb.njit(cache=True, nogil=True)
def _reaches(src: int, dst: int, fwd_start: I32, fwd_link: I32, head: I32, ib: U8,
             stack: I32, seen: I32, mark: U8) -> bool:
    """Whether bush links (``ib``) lead from ``src`` to ``dst`` (depth-first); ``mark`` is
    zero before and after (the nodes visited are listed in ``seen`` and cleared)."""
    stack[0] = src
    mark[src] = 1
    seen[0] = src
    size = 1
    count = 1
    found = False
    while size > 0:
        size -= 1
        u = stack[size]
        if u == dst:
            found = True
            break
        for kk in range(fwd_start[u], fwd_start[u + 1]):
            a = fwd_link[kk]
            v = head[a]
            if ib[a] and mark[v] == 0:
                mark[v] = 1
                seen[count] = v
                count += 1
                stack[size] = v
                size += 1
    for t in range(count):
        mark[seen[t]] = 0
    return found


@nb.njit(cache=True, nogil=True)
def _shift_pass(r: int, links: I32, nl: int, head: I32, tail: I32,
                bf: FloatArray, x: FloatArray, c: FloatArray, d: FloatArray, cls: int,
                w: float, t0: FloatArray, bb: FloatArray, pp: FloatArray, cap: FloatArray,
                fixed: FloatArray, threshold: float, lo: FloatArray, lo_pred: I32,
                hi: FloatArray, hi_pred: I32, due: I32, seg_lo: I32, seg_hi: I32, noise: float,
                k: int, all_bf: FloatArray, mates: I32, where: I32, pce: FloatArray,
                all_noise: FloatArray) -> float:
    """One Newton flow-shifting sweep over a bush of class ``cls`` (PCE ``w``: a shift of
    ``dx`` vehicles moves ``w dx`` of total flow, so the Newton step is divided by ``w``);
    returns the largest label difference.

    The labelling lists the nodes whose label difference is above the threshold (``due``, in
    topological order) as it finishes each one, and the shifts visit them in reverse (0137).
    A walk back to the segments' common node lists their links (list positions, from the node
    back) in ``seg_lo`` and ``seg_hi``, so the shift does not walk them again. Which path steps
    back is read off the predecessors: they are positions in a list grouped by head in
    topological order, so the later predecessor belongs to the later node."""
    cc = c[cls]
    due_count, worst = _used_labels(r, links, nl, head, tail, bf, cc, threshold, lo, lo_pred,
                                    hi, hi_pred, due, noise)
    exchange = False  # whether k has a mate: their positions are in ``where`` (``_map_origin``)
    for q in range(mates.shape[1]):
        if mates[k, q] >= 0:
            exchange = True
    for at in range(due_count - 1, -1, -1):
        j = due[at]
        # Walk both paths back to their last common node p, summing each segment on the way.
        e = lo_pred[j]
        a = links[e]
        cmin, dmin, p = cc[a], d[a], tail[a]
        seg_lo[0] = e
        n_lo = 1
        e = hi_pred[j]
        a = links[e]
        cmax, dmax, fmax, q = cc[a], d[a], bf[e], tail[a]
        seg_hi[0] = e
        n_hi = 1
        while p != q:
            if lo_pred[p] > hi_pred[q]:  # p is after q in topological order
                e = lo_pred[p]
                a = links[e]
                cmin += cc[a]
                dmin += d[a]
                p = tail[a]
                seg_lo[n_lo] = e
                n_lo += 1
            else:
                e = hi_pred[q]
                a = links[e]
                cmax += cc[a]
                dmax += d[a]
                fmax = min(fmax, bf[e])
                q = tail[a]
                seg_hi[n_hi] = e
                n_hi += 1
        gain = cmax - cmin
        if gain <= 0.0 or fmax <= 0.0:
            continue
        if exchange:
            fmax = _exchange(k, mates, where, c, pce, all_bf, all_noise, links, bf, w, gain,
                             fmax, threshold, seg_lo, n_lo, seg_hi, n_hi, noise)
            if fmax <= 0.0:
                continue
        slope = w * (dmax + dmin)
        dx = gain / slope if slope > 0.0 else fmax
        if fmax - dx <= noise:  # also when the step is longer than the segment's flow
            dx = fmax  # empty the longer segment rather than leave noise on it (0140)
        elif dx <= noise:
            continue  # a move within rounding noise
        _move(seg_hi, n_hi, -dx, w, links, bf, x, c, d, t0, bb, pp, cap, fixed, noise)
        _move(seg_lo, n_lo, dx, w, links, bf, x, c, d, t0, bb, pp, cap, fixed, noise)
    return worst


@nb.njit(cache=True, nogil=True)
def _map_origin(k: int, mates: I32, bush_class: I32, all_links: I32, all_lens: I32,
                where: I32, fill: bool) -> None:
    """List in ``where`` (one row per class) the position of every link in the bushes of the
    origin of bush ``k``, or (``fill`` False) clear them again (-1). The positions hold while
    the bushes are only shifted."""
    for q in range(mates.shape[1]):
        mate = k if q == bush_class[k] else mates[k, q]
        if mate < 0:
            continue
        for idx in range(all_lens[mate]):
            where[q, all_links[mate, idx]] = idx if fill else -1


@nb.njit(cache=True, nogil=True)
def _exchange(k: int, mates: I32, where: I32, c: FloatArray, pce: FloatArray,
              all_bf: FloatArray, all_noise: FloatArray, links: I32, bf: FloatArray,
              w: float, gain: float, fmax: float, threshold: float, seg_lo: I32, n_lo: int,
              seg_hi: I32, n_hi: int, noise: float) -> float:
    """Exchange flow with the bushes of other classes from the same origin: where such a
    bush holds both segments and gains less than this one by moving from the longer segment
    to the shorter, this bush's vehicles move to the shorter and the same PCE of the other's
    move to the longer, up to the flow either has there. The link flows do not change, so no
    cost does; each class pays the difference of its own costs. Returns the flow left on
    the longer segment."""
    for q in range(mates.shape[1]):
        mate = mates[k, q]
        if mate < 0 or fmax <= 0.0:
            continue
        cq = c[q]
        other = 0.0  # the mate's cost of the longer segment less that of the shorter
        f_short = np.inf  # the mate's flow along the shorter segment
        held = True
        for t in range(n_lo):  # from the node back: stop at the first link the mate leaves empty
            a = links[seg_lo[t]]
            p = where[q, a]
            if p < 0 or all_bf[mate, p] <= all_noise[mate]:
                held = False
                break
            other -= cq[a]
            f_short = min(f_short, all_bf[mate, p])
        if not held:
            continue
        for t in range(n_hi):
            a = links[seg_hi[t]]
            if where[q, a] < 0:
                held = False
                break
            other += cq[a]
        if not held or not gain - other > threshold:
            continue
        pce_moved = min(fmax * w, f_short * pce[q])
        dx = pce_moved / w
        if fmax - dx <= noise:
            dx = fmax
        dm = pce_moved / pce[q]
        if f_short - dm <= all_noise[mate]:
            dm = f_short
        for t in range(n_hi):
            e = seg_hi[t]
            left = bf[e] - dx
            bf[e] = left if left > noise else 0.0
            p = where[q, links[e]]
            all_bf[mate, p] += dm
        for t in range(n_lo):
            e = seg_lo[t]
            bf[e] += dx
            p = where[q, links[e]]
            left = all_bf[mate, p] - dm
            all_bf[mate, p] = left if left > all_noise[mate] else 0.0
        fmax -= dx
    return fmax


@nb.njit(cache=True, nogil=True, inline="always")
def _move(segment: I32, count: int, dx: float, w: float, links: I32, bf: FloatArray,
          x: FloatArray, c: FloatArray, d: FloatArray, t0: FloatArray, bb: FloatArray,
          pp: FloatArray, cap: FloatArray, fixed: FloatArray, noise: float) -> None:
    """Move ``dx`` vehicles (``w dx`` PCE) along a segment; every class's cost follows. What
    a move leaves at or below the bush's ``noise`` is no flow (0139, 0140)."""
    for k in range(count):
        e = segment[k]
        a = links[e]
        left = bf[e] + dx
        bf[e] = left if left > noise else 0.0
        x[a] = max(x[a] + w * dx, 0.0)
        for q in range(c.shape[0]):
            c[q, a], d[a] = cost_and_derivative(x[a], t0[a], bb[a], pp[a], cap[a], fixed[q, a])


@nb.njit(cache=True, nogil=True)
def _bush_lane(row: int, first: int, step: int, stop: int, reshape: bool, c_shape: FloatArray,
               origins: I32, zone_node: I32, fwd_start: I32, fwd_link: I32, head: I32,
               tail: I32, blocked: NDArray[np.bool_], t0: FloatArray,
               bb: FloatArray, pp: FloatArray, cap: FloatArray, fixed: FloatArray,
               b: Trees, x: FloatArray, c: FloatArray, d: FloatArray, passes: int,
               threshold: float, skip: bool, worst: FloatArray, s: Scratch,
               bush_class: I32, pce: FloatArray, checks: int, sequence: I32,
               noise: FloatArray, mates: I32) -> None:
    """The bushes ``sequence[first], sequence[first + step], ...`` (up to position ``stop``),
    with the work arrays of row ``row``: re-shape them at the costs ``c_shape``, or shift
    their flows with up to ``passes`` sweeps each against the live flows ``x``, costs ``c``
    and derivatives ``d``, recording each bush's largest label difference in ``worst`` (with
    ``skip``, bushes whose last one was within ``threshold`` are left alone). One kernel for
    both, so the code they share is compiled once (0113). Costs are per class
    (``c[bush_class[k]]``, 0139)."""
    lo, lo_pred, hi, hi_pred = s.lo[row], s.lo_pred[row], s.hi[row], s.hi_pred[row]
    mapped = -1  # a bush of the origin whose bushes' link positions are in ``s.where[row]``
    for t in range(first, stop, step):
        k = sequence[t]
        r = zone_node[origins[k]]
        cls = bush_class[k]
        if not reshape and mates.shape[1] > 0 and (mapped < 0
                                                   or origins[mapped] != origins[k]):
            if mapped >= 0:
                _map_origin(mapped, mates, bush_class, b.links, b.links_len, s.where[row],
                            False)
            mapped = k
            _map_origin(k, mates, bush_class, b.links, b.links_len, s.where[row], True)
        if reshape:
            b.topo_len[k], b.links_len[k] = _update_bush(
                r, b.topo[k], b.topo_len[k], b.links[k], b.links_len[k], fwd_start, fwd_link,
                head, tail, blocked, s.member[row], b.bush_flow[k],
                c_shape[cls], lo, lo_pred, hi, hi_pred, s.indeg[row], s.tree_pred[k], s.dense[row],
                s.slots[row], checks, s.due[row], s.seg_hi[row], s.mark[row], noise[k])
            continue
        if skip and worst[k] <= threshold:
            continue
        for _ in range(passes):
            worst[k] = _shift_pass(r, b.links[k], b.links_len[k],
                                   head, tail, b.bush_flow[k], x, c, d, cls, pce[cls], t0,
                                   bb, pp, cap, fixed, threshold, lo, lo_pred, hi, hi_pred,
                                   s.due[row], s.seg_lo[row], s.seg_hi[row], noise[k],
                                   k, b.bush_flow, mates, s.where[row], pce, noise)
            if worst[k] <= threshold:
                break
    if mapped >= 0:
        _map_origin(mapped, mates, bush_class, b.links, b.links_len, s.where[row], False)


def _kernel(g: Graph, row: int, first: int, step: int, stop: int, reshape: bool,
            c_shape: FloatArray, origins: I32, b: Trees, x: FloatArray, c: FloatArray,
            d: FloatArray, passes: int, threshold: float, skip: bool, s: Scratch,
            cl: Classes) -> None:
    _bush_lane(row, first, step, stop, reshape, c_shape, origins, g.zone_node, g.fwd_start,
               g.fwd_link, g.head, g.tail, g.blocked,
               g.free_flow_time, g.bpr_b, g.bpr_power, g.capacity, cl.fixed, b, x, c, d,
               passes, threshold, skip, s.worst, s, cl.bush_class, cl.pce, cl.cycle_checks,
               cl.sequence, cl.noise, cl.mates)


def shift_flows(g: Graph, origins: I32, b: Trees, x: FloatArray, c: FloatArray,
                d: FloatArray, passes: int, threshold: float, s: Scratch,
                skip: bool, cl: Classes) -> None:
    """Up to ``passes`` Newton sweeps per bush, origin after origin, updating the link flows
    ``x``, costs ``c`` (classes x links) and derivatives ``d`` (Gauss-Seidel: each bush sees
    the link flows the previous ones left; see docs/decisions/0112). With ``skip``, bushes
    whose last sweep found no label difference above ``threshold`` are skipped. ``origins``
    and ``cl``: each bush's origin and class (one class: ``one_class``)."""
    _kernel(g, 0, 0, 1, origins.shape[0], False, c, origins, b, x, c, d, passes, threshold,
            skip, s, cl)


def reshape_then_shift(g: Graph, origins: I32, b: Trees, x: FloatArray, c: FloatArray,
                       d: FloatArray, passes: int, threshold: float, s: Scratch,
                       cl: Classes) -> None:
    """Re-shape every bush at the costs ``c``, then ``shift_flows`` once with ``passes``
    sweeps: the result of doing them in that order, but in a pipeline (decision 0120). While
    lane 0 shifts one chunk of bushes in order, the other lanes (and lane 0 once it is done)
    re-shape the next chunk at a copy of the costs the iteration started with. A bush's
    re-shape reads only those costs and its own arrays, so it may run while earlier bushes
    shift; the shifts stay sequential. Re-shaping is handed out in small pieces, so the lanes
    stay busy whatever the two kinds of work cost on a network."""
    k = origins.shape[0]
    start_costs = c.copy()

    def stage(lane: int, count: int, shift: range, pieces: deque[int], stop: int) -> None:
        if lane == 0 and shift:
            _kernel(g, 0, shift.start, 1, shift.stop, False, c, origins, b, x, c, d, passes,
                    threshold, False, s, cl)
        while True:
            try:
                first = pieces.popleft()  # atomic under the GIL
            except IndexError:
                return
            _kernel(g, lane, first, 1, min(stop, first + _PIECE), True, start_costs, origins,
                    b, x, c, d, 0, 0.0, False, s, cl)

    shifted = 0  # the bushes before this one are shifted
    starts = _chunks(origins[cl.sequence], _CHUNK)
    for start, stop in zip(starts, [*starts[1:], k], strict=True):
        run_lanes(stage, s.lo.shape[0], range(shifted, start),
                  deque(range(start, stop, _PIECE)), stop)
        shifted = start


def _chunks(origin: I32, size: int) -> list[int]:
    """Where the chunks of about ``size`` bushes start in a sequence whose bushes have the
    origins ``origin``, never between two bushes of one origin (a shift may exchange flow with
    the bushes of its origin, so none of them may be re-shaped meanwhile), and the end."""
    k = origin.shape[0]
    new = np.flatnonzero(np.diff(origin) != 0) + 1  # where an origin's bushes start
    starts = [0]
    for at in range(size, k, size):
        if at <= starts[-1]:
            continue
        found = int(np.searchsorted(new, at))
        if found == len(new):
            break
        starts.append(int(new[found]))
    return [*sorted(set(starts)), k]


# A bush's link flow at or below this share of its origin's trips is rounding noise: no use,
# and a move leaves none (0139, 0140).
_NOISE = 1e-13

# Pipeline of reshape_then_shift: chunks of bushes shifted per stage, re-shapes per hand-out.
_CHUNK = 64
_PIECE = 8

