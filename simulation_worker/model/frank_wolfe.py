"""Frank-Wolfe and bi-conjugate Frank-Wolfe (link-based) user-equilibrium assignment.

Bi-conjugate directions follow M. Mitradjieva and P.O. Lindberg (2013), "The stiff is moving -
conjugate direction Frank-Wolfe methods with applications to traffic assignment",
Transportation Science 47(2), 280-293. The step size is an exact line search (bisection on the
directional derivative of the Beckmann objective).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numba as nb
import numpy as np

from simulation_worker.model.costs import link_cost, link_costs, link_derivatives
from simulation_worker.model.graph import Graph
from simulation_worker.model.network import AssignmentSettings, FloatArray
from simulation_worker.model.paths import all_or_nothing

_MAX_CONJUGATE = 0.99999


@nb.njit(cache=True)
def _slope(tau: float, x: FloatArray, d: FloatArray, t0: FloatArray, b: FloatArray,
           p: FloatArray, cap: FloatArray, fixed: FloatArray) -> float:
    total = 0.0
    for a in range(x.shape[0]):
        if d[a] != 0.0:
            total += d[a] * link_cost(x[a] + tau * d[a], t0[a], b[a], p[a], cap[a], fixed[a])
    return total


@nb.njit(cache=True)
def _line_search(x: FloatArray, d: FloatArray, t0: FloatArray, b: FloatArray, p: FloatArray,
                 cap: FloatArray, fixed: FloatArray) -> float:
    if _slope(1.0, x, d, t0, b, p, cap, fixed) <= 0.0:
        return 1.0
    lo = 0.0
    hi = 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _slope(mid, x, d, t0, b, p, cap, fixed) > 0.0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _conjugate_target(x: FloatArray, y: FloatArray, prev: list[FloatArray], tau_prev: float,
                      h: FloatArray) -> FloatArray:
    """Bi-conjugate (or conjugate, with one previous target) combination of AON targets."""
    if not prev or tau_prev >= 1.0:
        return y
    d_fw = y - x
    if len(prev) == 1:
        d1 = prev[0] - x
        den = float(d1 @ (h * (y - prev[0])))
        alpha = float(d1 @ (h * d_fw)) / den if den != 0.0 else 0.0
        alpha = min(max(alpha, 0.0), _MAX_CONJUGATE)
        return alpha * prev[0] + (1.0 - alpha) * y
    s1, s2 = prev
    d1 = s1 - x
    d2 = tau_prev * s1 - x + (1.0 - tau_prev) * s2
    den_mu = float(d2 @ (h * (s2 - s1)))
    mu = -float(d2 @ (h * d_fw)) / den_mu if den_mu != 0.0 else 0.0
    den_nu = float(d1 @ (h * d1))
    nu = -float(d1 @ (h * d_fw)) / den_nu if den_nu != 0.0 else 0.0
    nu += mu * tau_prev / (1.0 - tau_prev)
    mu, nu = max(mu, 0.0), max(nu, 0.0)
    beta0 = 1.0 / (1.0 + mu + nu)
    return beta0 * y + nu * beta0 * s1 + mu * beta0 * s2


def solve(
    graph: Graph,
    od: FloatArray,
    settings: AssignmentSettings,
    report: Callable[[int, float, float], None],
    started: float,
    stalled: Callable[[float], bool],
    start: FloatArray | None = None,
    done: int = 0,
    algorithm: str | None = None,
) -> tuple[FloatArray, int, bool]:
    """Run FW or BFW (``algorithm``, default the settings') from ``start`` (default
    all-or-nothing at free flow), counting iterations on from ``done``.

    Returns link flows, the iteration count and whether ``stalled(gap)`` stopped the run.
    """
    g = graph
    if start is None:
        x, _ = all_or_nothing(g, link_costs(g, np.zeros(g.n_links)), od)
    else:
        x = start.copy()
    conjugate = (algorithm or settings.algorithm) == "bfw"
    prev: list[FloatArray] = []
    tau = 1.0
    for iteration in range(done + 1, max(settings.max_iterations, done) + 1):
        c = link_costs(g, x)
        y, spt = all_or_nothing(g, c, od)
        tstt = float(x @ c)
        gap = (tstt - spt) / tstt if tstt > 0 else 0.0
        report(iteration, gap, time.perf_counter() - started)
        if gap <= settings.relative_gap:
            return x, iteration, False
        if stalled(gap):
            return x, iteration, True
        target = y
        if conjugate:
            target = _conjugate_target(x, y, prev, tau, link_derivatives(g, x))
            if float((target - x) @ c) >= 0.0:  # not a descent direction: fall back to FW
                target, prev = y, []
        d = target - x
        tau = float(_line_search(x, d, g.free_flow_time, g.bpr_b, g.bpr_power, g.capacity,
                                 g.fixed_cost))
        x = x + tau * d
        prev = [target, *prev[:1]]
    return x, max(settings.max_iterations, done), False
