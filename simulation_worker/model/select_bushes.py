"""Select-link analysis read off Algorithm B's final bushes (docs/decisions/0125).

Flow is assumed to leave a node in proportion to the bush flows on its outgoing links whatever
way it came. A selection's state along a path is the set of its links passed so far (``bits[s,
a]``: the bit link a sets; one bit for a whole ``or`` set), and a trip is selected when it ends
in state ``full[s]``.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

from simulation_worker.model.network import FloatArray
from simulation_worker.model.paths import Trees

I32 = NDArray[np.int32]


@nb.njit(cache=True)
def select_on_bushes(bush_origin: I32, bush_class: I32, zone_node: I32, od: FloatArray,
                     fwd_start: I32, fwd_link: I32, bwd_start: I32, bwd_link: I32, head: I32,
                     tail: I32, b: Trees, bits: I32, full: I32, n_classes: int
                     ) -> tuple[FloatArray, FloatArray]:
    """Forward, in topological order: the share of the flow reaching each node in each state;
    backward: the probability that the rest of the path, from a node in a state, ends
    selected. Returns matrices (classes x selections x zones x zones) and link flows (classes
    x selections x links) of the selected demand. ``od``: classes x zones x zones; bush k is
    origin ``bush_origin[k]``'s bush of class ``bush_class[k]``."""
    n_sel, m = bits.shape[0], head.shape[0]
    n_zones, n = zone_node.shape[0], b.topo.shape[1]
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
    ib = np.zeros(m, dtype=np.uint8)  # the bush's links, and their flows, one per link
    bf = np.zeros(m)
    for k in range(bush_origin.shape[0]):
        o, cls, nt = bush_origin[k], bush_class[k], b.topo_len[k]
        order = b.topo[k]
        listed = b.links[k]
        for idx in range(b.links_len[k]):
            ib[listed[idx]] = 1
            bf[listed[idx]] = b.bush_flow[k, idx]
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
        for idx in range(b.links_len[k]):
            ib[listed[idx]] = 0
            bf[listed[idx]] = 0.0
    return matrix, flows
