"""BPR link costs, their derivatives and the Beckmann objective (numba kernels).

t(x) = t0 * (1 + b * (x / c) ** p) + fixed, where ``fixed`` is the flow-independent part of the
generalized cost. Links with b = 0 or p = 0 have constant cost.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

from simulation_worker.model.errors import CostOverflowError
from simulation_worker.model.graph import Graph
from simulation_worker.model.network import FloatArray

I32 = NDArray[np.int32]

# Derivatives of p < 1 BPR terms are infinite at zero flow; they are taken at this flow instead.
_MIN_DERIVATIVE_FLOW = 1e-9


@nb.njit(cache=True, inline="always")
def link_cost(x: float, t0: float, b: float, p: float, cap: float, fixed: float) -> float:
    if b == 0.0 or p == 0.0:
        return t0 * (1.0 + b) + fixed
    return float(t0 * (1.0 + b * (x / cap) ** p) + fixed)


@nb.njit(cache=True, inline="always")
def link_derivative(x: float, t0: float, b: float, p: float, cap: float) -> float:
    if b == 0.0 or p == 0.0 or t0 == 0.0:
        return 0.0
    if p < 1.0 and x < _MIN_DERIVATIVE_FLOW:
        x = _MIN_DERIVATIVE_FLOW
    return float(t0 * b * p / cap * (x / cap) ** (p - 1.0))


@nb.njit(cache=True, inline="always")
def cost_and_derivative(x: float, t0: float, b: float, p: float, cap: float, fixed: float
                        ) -> tuple[float, float]:
    """``link_cost`` and ``link_derivative`` with one power instead of two (none for the
    common p = 4): the flow-shifting inner loop updates both after every move."""
    if b == 0.0 or p == 0.0:
        return t0 * (1.0 + b) + fixed, 0.0
    if p < 1.0:
        return (link_cost(x, t0, b, p, cap, fixed), link_derivative(x, t0, b, p, cap))
    y = x / cap
    r = y * y * y if p == 4.0 else y ** (p - 1.0)
    return t0 * (1.0 + b * (r * y)) + fixed, t0 * b * p / cap * r


@nb.njit(cache=True, nogil=True)
def sum_flows(rows: FloatArray, links: I32, lens: I32, x: FloatArray, c: FloatArray,
              d: FloatArray, t0: FloatArray, b: FloatArray, p: FloatArray, cap: FloatArray,
              fixed: FloatArray) -> None:
    """``x`` = the sum of the flow ``rows``; ``c`` and ``d`` = cost and derivative at ``x``.
    Without ``links`` (no rows), each row holds one flow per link; with them, row k's first
    ``lens[k]`` values are the flows on the links ``links[k, :lens[k]]`` (Algorithm B's
    bushes). The one cost kernel: fewer kernels, shorter cold start."""
    for a in range(x.shape[0]):
        x[a] = 0.0
    for k in range(rows.shape[0]):
        row = rows[k]
        if links.shape[0] == 0:
            for a in range(x.shape[0]):
                x[a] += row[a]
            continue
        listed = links[k]
        for idx in range(lens[k]):
            x[listed[idx]] += row[idx]
    for a in range(x.shape[0]):
        c[a], d[a] = cost_and_derivative(x[a], t0[a], b[a], p[a], cap[a], fixed[a])


NO_LINKS = np.zeros((0, 0), dtype=np.int32)
NO_LENS = np.zeros(0, dtype=np.int32)


def costs_at(graph: Graph, flows: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(cost, derivative) of every graph link at ``flows``."""
    m = graph.n_links
    rows = np.ascontiguousarray(flows, dtype=np.float64).reshape(1, m)
    x, c, d = np.empty(m), np.empty(m), np.empty(m)
    sum_flows(rows, NO_LINKS, NO_LENS, x, c, d, graph.free_flow_time, graph.bpr_b,
              graph.bpr_power, graph.capacity, graph.fixed_cost)
    return c, d


def link_costs(graph: Graph, flows: FloatArray) -> FloatArray:
    """Generalized cost of every graph link at ``flows``."""
    return costs_at(graph, flows)[0]


def check_finite(graph: Graph, flows: FloatArray, costs: FloatArray) -> None:
    """CostOverflowError when a link's cost at ``flows`` is not finite (an equilibrium of
    infinite times means nothing, and its gap is NaN)."""
    bad = ~np.isfinite(costs)
    if bad.any():
        loaded = bad & np.isfinite(flows)  # a link with a flow names the cause best
        a = int(np.flatnonzero(loaded if loaded.any() else bad)[0])
        raise CostOverflowError(int(graph.link_index[a]), int(bad.sum()),
                                float(flows[a] / graph.capacity[a]), float(graph.bpr_power[a]))


def link_derivatives(graph: Graph, flows: FloatArray) -> FloatArray:
    """d cost / d flow of every graph link at ``flows``."""
    return costs_at(graph, flows)[1]


def beckmann_objective(graph: Graph, flows: FloatArray) -> float:
    """Sum over links of the integral of the generalized cost from 0 to the link flow."""
    x = np.asarray(flows, dtype=np.float64)
    t0, b, p, cap = graph.free_flow_time, graph.bpr_b, graph.bpr_power, graph.capacity
    constant = (b == 0.0) | (p == 0.0)
    with np.errstate(all="ignore"):  # capacity 0 only where the cost is constant
        varying = t0 * (x + b * cap / (p + 1.0) * (x / cap) ** (p + 1.0))
    integral = np.where(constant, t0 * (1.0 + b) * x, varying) + graph.fixed_cost * x
    return float(integral.sum())
