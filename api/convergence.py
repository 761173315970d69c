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
BISECTION_STEPS = 60


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


def cost(run: RunLinks, x: FloatArray) -> FloatArray:
    """BPR travel time at flows x."""
    ratio = np.divide(x, run.capacity, out=np.zeros_like(x), where=run.capacity > 0)
    return np.asarray(run.free_flow_time * (1.0 + run.b * ratio ** run.power))


def integral(run: RunLinks, x: FloatArray) -> FloatArray:
    """Integral of the BPR time from 0 to x."""
    ratio = np.divide(x, run.capacity, out=np.zeros_like(x), where=run.capacity > 0)
    extra = run.b * run.capacity / (run.power + 1.0) * ratio ** (run.power + 1.0)
    return np.asarray(run.free_flow_time * (x + extra))


def divergence(run: RunLinks, y: FloatArray) -> FloatArray:
    """D_a(x_a, y_a) for the run's flows x and candidate equilibrium flows y."""
    x = run.flow
    return np.asarray(integral(run, x) - integral(run, y) - cost(run, y) * (x - y))


def interval(run: RunLinks, budget: float) -> tuple[FloatArray, FloatArray]:
    """The flows y >= 0 with D(x, y) <= budget, by bisection on each side of x."""
    x = run.flow
    below = _reach(run, budget, x, -1.0)
    above = _reach(run, budget, np.maximum(x, 1.0) * 1e3 + 1e6, 1.0)
    return x - below, x + above


def _reach(run: RunLinks, budget: float, widest: FloatArray, side: float) -> FloatArray:
    inside, outside = np.zeros_like(run.flow), np.asarray(widest, dtype=np.float64)
    for _ in range(BISECTION_STEPS):
        middle = (inside + outside) / 2.0
        fits = divergence(run, run.flow + side * middle) <= budget
        inside = np.where(fits, middle, inside)
        outside = np.where(fits, outside, middle)
    return inside


def bounds(run: RunLinks) -> Bounds:
    """Noise and certain intervals of each link's equilibrium flow."""
    total_time = float(np.sum(run.flow * cost(run, run.flow)))
    gap_budget = run.relative_gap * total_time
    used = max(1, int(np.count_nonzero(run.flow > 0)))
    noise_low, noise_high = interval(run, gap_budget / used)
    certain_low, certain_high = interval(run, gap_budget)
    for array in (noise_low, noise_high, certain_low, certain_high):
        array[run.closed] = 0.0
    return Bounds(noise_low, noise_high, certain_low, certain_high)


@dataclass(frozen=True)
class Significance:
    """Per link: significant (noise intervals apart), certain, and each run's noise half-width."""

    significant: NDArray[np.bool_]
    certain: NDArray[np.bool_]
    noise_a: FloatArray
    noise_b: FloatArray


def classify(a: RunLinks, b: RunLinks) -> Significance:
    """Which links' flows differ by more than the two runs' convergence can explain."""
    ba, bb = bounds(a), bounds(b)
    apart = (ba.noise_low > bb.noise_high) | (bb.noise_low > ba.noise_high)
    sure = (ba.certain_low > bb.certain_high) | (bb.certain_low > ba.certain_high)
    structural = (a.closed != b.closed) & (np.maximum(a.flow, b.flow) > 0)
    return Significance(apart | structural, sure | structural,
                        (ba.noise_high - ba.noise_low) / 2.0,
                        (bb.noise_high - bb.noise_low) / 2.0)
