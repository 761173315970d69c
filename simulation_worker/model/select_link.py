"""Select-link analysis: the OD matrix of the demand whose paths use selected links, and the
link flows of only that demand, per class.

A selection is up to MAX_LINKS links combined with ``or`` (a path using any of them counts once)
or ``and`` (a path must use all of them). Frank-Wolfe moves every class's flow toward an
all-or-nothing target with one step size, so the selected demand and its flows follow the same
convex combinations: at each iteration the selection is taken on the target's shortest paths
(the same Dijkstra trees the loading uses) and mixed in with the step size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np
from numpy.typing import NDArray

from simulation_worker.model.errors import ModelInputError
from simulation_worker.model.graph import Graph
from simulation_worker.model.network import FloatArray
from simulation_worker.model.paths import dijkstra

MAX_LINKS = 10
MODES = ("or", "and")
I32 = NDArray[np.int32]


@dataclass(frozen=True)
class LinkSelection:
    """A named selection of network link positions (0-based, network link order)."""

    name: str
    links: tuple[int, ...]
    mode: str = "or"


@dataclass(eq=False)
class SelectLinkResult:
    """Per selection and class: OD matrix (zones x zones) and link flows (network order)."""

    matrices: dict[tuple[str, str], FloatArray] = field(default_factory=dict)
    flows: dict[tuple[str, str], FloatArray] = field(default_factory=dict)


def check_selections(selections: tuple[LinkSelection, ...], n_links: int) -> None:
    """At most MAX_LINKS links in all, each known, in an ``or`` or ``and`` set."""
    if sum(len(s.links) for s in selections) > MAX_LINKS:
        raise ModelInputError(f"select at most {MAX_LINKS} links in all")
    for s in selections:
        if s.mode not in MODES or not s.links:
            raise ModelInputError(f"selection {s.name!r}: name links and a mode (or, and)")
        if any(not 0 <= k < n_links for k in s.links):
            raise ModelInputError(f"selection {s.name!r} names a link that does not exist")


@nb.njit(cache=True)
def _select(zone_node: I32, od: FloatArray, fwd_start: I32, fwd_link: I32, head: I32,
            tail: I32, cost: FloatArray, blocked: NDArray[np.bool_], n_nodes: int,
            member: NDArray[np.bool_], need: I32) -> tuple[FloatArray, FloatArray]:
    n_sel, n_zones = member.shape[0], zone_node.shape[0]
    matrix = np.zeros((n_sel, n_zones, n_zones))
    flows = np.zeros((n_sel, head.shape[0]))
    dist = np.empty(n_nodes)
    pred = np.empty(n_nodes, dtype=np.int32)
    order = np.empty(n_nodes, dtype=np.int32)
    place = np.empty(n_nodes, dtype=np.int32)
    heap_key = np.empty(n_nodes)
    heap_node = np.empty(n_nodes, dtype=np.int32)
    hits = np.zeros(n_sel, dtype=np.int32)
    for i in range(n_zones):
        if od[i].sum() <= 0.0:
            continue
        root = zone_node[i]
        dijkstra(root, fwd_start, fwd_link, head, cost, blocked, dist, pred, order, place,
                 heap_key, heap_node)
        for z in range(n_zones):
            if od[i, z] <= 0.0 or zone_node[z] == root:
                continue
            hits[:] = 0
            v = zone_node[z]
            while v != root and pred[v] >= 0:
                a = pred[v]
                for s in range(n_sel):
                    if member[s, a]:
                        hits[s] += 1
                v = tail[a]
            for s in range(n_sel):
                if hits[s] >= need[s]:
                    matrix[s, i, z] += od[i, z]
                    v = zone_node[z]
                    while v != root and pred[v] >= 0:
                        flows[s, pred[v]] += od[i, z]
                        v = tail[pred[v]]
    return matrix, flows


class SelectLinkTracker:
    """Follows the selections through a Frank-Wolfe run: ``target`` at each all-or-nothing
    loading, ``advance`` with the step size taken."""

    def __init__(self, graph: Graph, selections: tuple[LinkSelection, ...],
                 class_names: tuple[str, ...]) -> None:
        position = {int(k): i for i, k in enumerate(graph.link_index)}
        self.graph = graph
        self.selections = selections
        self.names = class_names
        self.member = np.zeros((len(selections), graph.n_links), dtype=np.bool_)
        for s, selection in enumerate(selections):
            on_graph = [position[k] for k in selection.links if k in position]
            self.member[s, on_graph] = True
        self.need = np.array([len(set(s.links)) if s.mode == "and" else 1 for s in selections],
                             dtype=np.int32)
        self.current: list[tuple[FloatArray, FloatArray] | None] = [None] * len(class_names)
        self.pending: list[tuple[FloatArray, FloatArray] | None] = [None] * len(class_names)

    def target(self, k: int, cost: FloatArray, od: FloatArray) -> None:
        """Selected demand and flows on the shortest paths of class ``k`` at ``cost``."""
        g = self.graph
        found = _select(g.zone_node, od, g.fwd_start, g.fwd_link, g.head, g.tail, cost,
                        g.blocked, g.n_nodes, self.member, self.need)
        if self.current[k] is None:
            self.current[k] = found
        else:
            self.pending[k] = found

    def advance(self, tau: float) -> None:
        """Mix the pending targets in with step ``tau``."""
        for k, found in enumerate(self.pending):
            now = self.current[k]
            if found is not None and now is not None:
                self.current[k] = (now[0] + tau * (found[0] - now[0]),
                                   now[1] + tau * (found[1] - now[1]))
            self.pending[k] = None

    def result(self, n_links: int) -> SelectLinkResult:
        """The selections' matrices and flows (network link order)."""
        out = SelectLinkResult()
        for k, name in enumerate(self.names):
            now = self.current[k]
            if now is None:
                continue
            for s, selection in enumerate(self.selections):
                flows = np.zeros(n_links)
                flows[self.graph.link_index] = now[1][s]
                out.matrices[(selection.name, name)] = now[0][s]
                out.flows[(selection.name, name)] = flows
        return out
