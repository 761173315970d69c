"""Change versus convergence noise: which link-flow differences two runs' gaps can explain.

A run solved to relative gap g has link flows x near, not at, its equilibrium x*. For BPR
costs the Beckmann objective Z is convex and its duality gap bounds the distance:

    sum_a D_a(x_a, x*_a) <= Z(x) - Z(x*) <= TSTT - SPTT = g * TSTT = G,

where D_a(x, y) = Phi_a(x) - Phi_a(y) - t_a(y) (x - y) >= 0 is the Bregman divergence of the
link's cost integral Phi_a. So each link's equilibrium flow lies in the interval of flows y
with D_a(x_a, y) <= G (the certain interval). That bound lets the whole gap sit on one link,
which is too wide to decide anything on a real network; the noise interval spreads the gap
evenly over the links that carry flow (D_a <= G / n). A link's difference is significant
when the two runs' noise intervals do not overlap (their equilibria differ on that link),
and certain when even the certain intervals do not. A link closed in one run and used in
the other is always significant: no convergence error closes a link. Decision 0702.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BISECTION_STEPS = 30  # bracket 1e3 * (flow + capacity): resolution ~1e-6 of it


@dataclass(frozen=True)
class RunLinks:
    """One run's flows and its links' BPR parameters (same link order in both runs)."""

    flow: FloatArray
    free_flow_time: FloatArray
    b: FloatArray
    power: FloatArray
    capacity: FloatArray
    closed: NDArray[np.bool_]
    relative_gap: float

    @staticmethod
    def of(rows: Sequence[dict[str, float | bool | None]], relative_gap: float) -> RunLinks:
        """From read-model rows with flow, free_flow_time, b, power, capacity and closed."""
        def column(name: str, default: float) -> FloatArray:
            values = [default if r.get(name) is None else float(r[name] or 0.0) for r in rows]
            return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=default)
        closed = np.asarray([bool(r.get("closed")) for r in rows], dtype=np.bool_)
        return RunLinks(column("flow", 0.0), column("free_flow_time", 0.0), column("b", 0.15),
                        column("power", 4.0), column("capacity", 1.0), closed,
                        max(0.0, relative_gap))


@dataclass(frozen=True)
class Bounds:
    """Per link: the noise interval and the certain interval of the equilibrium flow."""

    noise_low: FloatArray
    noise_high: FloatArray
    certain_low: FloatArray
    certain_high: FloatArray


def cost_and_integral(run: RunLinks, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """BPR travel time at flows x, and its integral from 0 to x (one power per link)."""
    ratio = np.divide(x, run.capacity, out=np.zeros_like(x), where=run.capacity > 0)
    raised = np.power(ratio, run.power)
    time = run.free_flow_time * (1.0 + run.b * raised)
    area = run.free_flow_time * (x + run.b * run.capacity / (run.power + 1.0) * raised * ratio)
    return np.asarray(time), np.asarray(area)


def interval(run: RunLinks, budget: float, links: NDArray[np.bool_] | None = None
             ) -> tuple[FloatArray, FloatArray]:
    """The flows y >= 0 with D(x, y) <= budget, by bisection on each side of x (only for
    `links` when given; the others get the run's flow itself)."""
    chosen = np.ones(run.flow.shape, dtype=np.bool_) if links is None else links
    part = _subset(run, chosen)
    x = part.flow
    _, area_x = cost_and_integral(part, x)
    below = _reach(part, area_x, budget, x, -1.0)
    above = _reach(part, area_x, budget, 1e3 * (x + part.capacity) + 1.0, 1.0)
    low, high = run.flow.copy(), run.flow.copy()
    low[chosen], high[chosen] = x - below, x + above
    return low, high


def _subset(run: RunLinks, chosen: NDArray[np.bool_]) -> RunLinks:
    return RunLinks(run.flow[chosen], run.free_flow_time[chosen], run.b[chosen],
                    run.power[chosen], run.capacity[chosen], run.closed[chosen],
                    run.relative_gap)


def _reach(run: RunLinks, area_x: FloatArray, budget: float, widest: FloatArray,
           side: float) -> FloatArray:
    """How far from x, on one side, D(x, y) stays within the budget."""
    inside, outside = np.zeros_like(run.flow), np.asarray(widest, dtype=np.float64)
    for _ in range(BISECTION_STEPS):
        middle = (inside + outside) / 2.0
        y = run.flow + side * middle
        time_y, area_y = cost_and_integral(run, y)
        fits = area_x - area_y - time_y * (run.flow - y) <= budget
        inside = np.where(fits, middle, inside)
        outside = np.where(fits, outside, middle)
    return inside


def budget_of(run: RunLinks) -> float:
    """The run's absolute gap G = g * TSTT."""
    time, _ = cost_and_integral(run, run.flow)
    return run.relative_gap * float(np.sum(run.flow * time))


def noise_interval(run: RunLinks) -> tuple[FloatArray, FloatArray]:
    """Flows within the gap shared evenly over the links that carry flow."""
    used = max(1, int(np.count_nonzero(run.flow > 0)))
    return _zero_when_closed(run, *interval(run, budget_of(run) / used))


def certain_interval(run: RunLinks, links: NDArray[np.bool_] | None = None
                     ) -> tuple[FloatArray, FloatArray]:
    """Flows within the whole gap (only for `links` when given)."""
    return _zero_when_closed(run, *interval(run, budget_of(run), links))


def _zero_when_closed(run: RunLinks, low: FloatArray, high: FloatArray
                      ) -> tuple[FloatArray, FloatArray]:
    low[run.closed], high[run.closed] = 0.0, 0.0
    return low, high


def bounds(run: RunLinks) -> Bounds:
    """Noise and certain intervals of each link's equilibrium flow."""
    return Bounds(*noise_interval(run), *certain_interval(run))


@dataclass(frozen=True)
class Significance:
    """Per link: significant (noise intervals apart), certain, and each run's noise half-width."""

    significant: NDArray[np.bool_]
    certain: NDArray[np.bool_]
    noise_a: FloatArray
    noise_b: FloatArray


def classify(a: RunLinks, b: RunLinks) -> Significance:
    """Which links' flows differ by more than the two runs' convergence can explain."""
    (low_a, high_a), (low_b, high_b) = noise_interval(a), noise_interval(b)
    apart = (low_a > high_b) | (low_b > high_a)
    # Certain intervals contain the noise ones: only links apart by noise can be certain.
    (sure_low_a, sure_high_a), (sure_low_b, sure_high_b) = (
        certain_interval(a, apart), certain_interval(b, apart))
    sure = apart & ((sure_low_a > sure_high_b) | (sure_low_b > sure_high_a))
    structural = (a.closed != b.closed) & (np.maximum(a.flow, b.flow) > 0)
    return Significance(apart | structural, sure | structural, (high_a - low_a) / 2.0,
                        (high_b - low_b) / 2.0)
