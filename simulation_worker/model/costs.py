"""BPR link costs, their derivatives and the Beckmann objective (numba kernels).

t(x) = t0 * (1 + b * (x / c) ** p) + fixed, where ``fixed`` is the flow-independent part of the
generalized cost. Links with b = 0 or p = 0 have constant cost.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from simulation_worker.model.graph import Graph
from simulation_worker.model.network import FloatArray

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
def link_integral(x: float, t0: float, b: float, p: float, cap: float, fixed: float) -> float:
    if b == 0.0 or p == 0.0:
        return (t0 * (1.0 + b) + fixed) * x
    return float(t0 * (x + b * cap / (p + 1.0) * (x / cap) ** (p + 1.0)) + fixed * x)


@nb.njit(cache=True)
def _costs(x: FloatArray, t0: FloatArray, b: FloatArray, p: FloatArray, cap: FloatArray,
           fixed: FloatArray) -> FloatArray:
    out = np.empty(x.shape[0])
    for a in range(x.shape[0]):
        out[a] = link_cost(x[a], t0[a], b[a], p[a], cap[a], fixed[a])
    return out


@nb.njit(cache=True)
def _derivatives(x: FloatArray, t0: FloatArray, b: FloatArray, p: FloatArray,
                 cap: FloatArray) -> FloatArray:
    out = np.empty(x.shape[0])
    for a in range(x.shape[0]):
        out[a] = link_derivative(x[a], t0[a], b[a], p[a], cap[a])
    return out


@nb.njit(cache=True)
def _objective(x: FloatArray, t0: FloatArray, b: FloatArray, p: FloatArray, cap: FloatArray,
               fixed: FloatArray) -> float:
    total = 0.0
    for a in range(x.shape[0]):
        total += link_integral(x[a], t0[a], b[a], p[a], cap[a], fixed[a])
    return total


def link_costs(graph: Graph, flows: FloatArray) -> FloatArray:
    """Generalized cost of every graph link at ``flows``."""
    return _costs(flows, graph.free_flow_time, graph.bpr_b, graph.bpr_power, graph.capacity,
                  graph.fixed_cost)


def link_derivatives(graph: Graph, flows: FloatArray) -> FloatArray:
    """d cost / d flow of every graph link at ``flows``."""
    return _derivatives(flows, graph.free_flow_time, graph.bpr_b, graph.bpr_power,
                        graph.capacity)


def beckmann_objective(graph: Graph, flows: FloatArray) -> float:
    """Sum over links of the integral of the generalized cost from 0 to the link flow."""
    return float(_objective(flows, graph.free_flow_time, graph.bpr_b, graph.bpr_power,
                            graph.capacity, graph.fixed_cost))
