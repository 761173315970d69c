"""Series links merged into one for the solver: fewer nodes and links, the same equilibrium.

A node that is not a zone, not blocked, and has one link in and one out (or a two-way street
through it: links in from and out to the same two neighbours) only passes flow on. Every path
through it uses the link in and then the link out, so both carry the same flow at every
solution, and the pair can be solved as one link whose cost is the sum of theirs. Chains of such
nodes become one link. The sum of BPR costs with one power p is a BPR cost again:

    sum_i [t0_i (1 + b_i (x / c_i)^p) + f_i] = T (1 + B (x / C)^p) + F

with T = sum t0_i, F = sum f_i, C = the least capacity and B = sum(t0_i b_i / c_i^p) C^p / T
(constant-cost links add to T alone). A chain stops where the power would change, so the merge
is exact. A chain that comes back to its first node (a dead-end spur, u -> v -> u) carries no
flow at equilibrium and is left out. Decision 0116.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulation_worker.model.graph import Graph, star
from simulation_worker.model.network import FloatArray

I32 = NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class Contraction:
    """A graph with its series links merged, and for each link of the original graph the
    merged link that carries its flow (-1: a link no flow can use)."""

    graph: Graph
    of_link: I32

    def expand(self, values: FloatArray) -> FloatArray:
        """Per-link flows of the merged graph as flows of the original graph's links."""
        out = np.zeros(self.of_link.shape[0])
        used = self.of_link >= 0
        out[used] = values[self.of_link[used]]
        return out


def contract(g: Graph) -> Contraction | None:
    """The graph with its chains of series links merged, or None if there are none."""
    nxt = _continuations(g)
    if not (nxt >= 0).any():
        return None
    m = g.n_links
    congestible = (g.bpr_b != 0.0) & (g.bpr_power != 0.0) & (g.free_flow_time != 0.0)
    continued = np.zeros(m, dtype=bool)
    continued[nxt[nxt >= 0]] = True
    chain_of = np.full(m, -1, dtype=np.int64)
    chains: list[list[int]] = []
    # Chains start at links nothing continues; then at whatever is left: a link where a chain
    # stopped because the power changed, or a ring of pass-through nodes (one chain that
    # comes back to its first node, so _merge leaves it out: no flow can reach it).
    for start in [*np.flatnonzero(~continued).tolist(), *range(m)]:
        if chain_of[start] >= 0:
            continue
        chain = [start]
        chain_of[start] = len(chains)
        power = g.bpr_power[start] if congestible[start] else 0.0
        a = int(nxt[start])
        while a >= 0 and chain_of[a] < 0:
            if congestible[a]:
                if power and g.bpr_power[a] != power:
                    break  # the next chain starts at a
                power = g.bpr_power[a]
            chain.append(a)
            chain_of[a] = len(chains)
            a = int(nxt[a])
        chains.append(chain)
    if len(chains) == m:
        return None
    return _merge(g, chains, chain_of, congestible)


def _continuations(g: Graph) -> I32:
    """For each link, the link that every path using it takes next (-1 if none is forced)."""
    nxt = np.full(g.n_links, -1, dtype=np.int32)
    indeg = np.diff(g.bwd_start)
    outdeg = np.diff(g.fwd_start)
    keep = g.blocked.copy()
    keep[g.zone_node] = True
    candidates = np.flatnonzero(~keep & (indeg == outdeg) & ((indeg == 1) | (indeg == 2)))
    for v in candidates.tolist():
        ins = g.bwd_link[g.bwd_start[v]:g.bwd_start[v + 1]]
        outs = g.fwd_link[g.fwd_start[v]:g.fwd_start[v + 1]]
        if len(ins) == 1:
            nxt[ins[0]] = outs[0]
            continue
        u0, u1 = int(g.tail[ins[0]]), int(g.tail[ins[1]])
        w0, w1 = int(g.head[outs[0]]), int(g.head[outs[1]])
        if u0 == u1 or {u0, u1} != {w0, w1}:
            continue
        # A two-way street: in from u0 goes on to u1 and in from u1 on to u0 (no U-turn).
        nxt[ins[0]] = outs[0] if w0 == u1 else outs[1]
        nxt[ins[1]] = outs[1] if w0 == u1 else outs[0]
    return nxt


def _merge(g: Graph, chains: list[list[int]], chain_of: NDArray[np.int64],
           congestible: NDArray[np.bool_]) -> Contraction:
    count = len(chains)
    first = np.array([c[0] for c in chains], dtype=np.int64)
    last = np.array([c[-1] for c in chains], dtype=np.int64)
    t0, b, p, cap = g.free_flow_time, g.bpr_b, g.bpr_power, g.capacity
    base = np.where(congestible, t0, t0 * (1.0 + b))
    power = np.where(congestible, p, 0.0)
    chain_power = np.zeros(count)
    np.maximum.at(chain_power, chain_of, power)  # one power per chain (or 0: constant)
    with np.errstate(all="ignore"):
        coefficient = np.where(congestible, t0 * b / cap ** np.where(congestible, p, 1.0), 0.0)
    free = _sums(chain_of, base, count)
    slope = _sums(chain_of, coefficient, count)
    fixed = _sums(chain_of, g.fixed_cost, count)
    least_cap = np.full(count, np.inf)
    np.minimum.at(least_cap, chain_of[congestible], cap[congestible])
    varying = slope > 0.0
    new_cap = np.where(varying, least_cap, 1.0)
    new_power = np.where(varying, chain_power, 1.0)
    with np.errstate(all="ignore"):
        new_b = np.where(varying, slope * new_cap ** new_power / free, 0.0)
    tail, head = g.tail[first], g.head[last]
    loop = tail == head  # a spur that returns where it started
    ids = np.flatnonzero(~loop)
    order = ids[np.argsort(tail[ids], kind="stable")]  # tail order, as build_graph
    position = np.full(count, -1, dtype=np.int32)
    position[order] = np.arange(order.shape[0], dtype=np.int32)
    # Nodes renumbered: only those still on a link, and the zones, in their old order.
    kept = np.zeros(g.n_nodes, dtype=bool)
    kept[tail[order]] = True
    kept[head[order]] = True
    kept[g.zone_node] = True
    number = np.cumsum(kept, dtype=np.int32) - 1
    n = int(kept.sum())
    tail, head = number[tail[order]], number[head[order]]
    fwd_start, fwd_link = star(tail, n)
    bwd_start, bwd_link = star(head, n)
    merged = Graph(
        n_nodes=n, link_index=g.link_index[first[order]], tail=tail, head=head,
        fwd_start=fwd_start, fwd_link=fwd_link, bwd_start=bwd_start, bwd_link=bwd_link,
        free_flow_time=free[order], bpr_b=new_b[order], bpr_power=new_power[order],
        capacity=new_cap[order], fixed_cost=fixed[order], blocked=g.blocked[kept],
        zone_node=number[g.zone_node])
    return Contraction(merged, position[chain_of])


def _sums(groups: NDArray[np.int64], values: FloatArray, count: int) -> FloatArray:
    """Sum of ``values`` per group."""
    return np.asarray(np.bincount(groups, weights=values, minlength=count), dtype=np.float64)
