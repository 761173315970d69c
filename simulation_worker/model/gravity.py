"""Doubly-constrained gravity distribution with Furness (iterative proportional) balancing.

T_ij = a_i * P_i * b_j * A_j * f(c_ij), with f(c) = exp(-beta * c) or c ** -beta, and the
balancing factors a, b chosen so that sum_j T_ij = P_i and sum_i T_ij = A_j.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulation_worker.model.errors import InvalidParameterError, NegativeDemandError
from simulation_worker.model.network import FloatArray, GravityDemand, Zone


@dataclass(frozen=True, eq=False)
class Distribution:
    """A balanced OD matrix and how well it matches its margins."""

    trips: FloatArray
    iterations: int
    max_relative_error: float


def deterrence(cost: FloatArray, params: GravityDemand) -> FloatArray:
    """f(c) for every cell; unreachable (infinite cost) pairs get 0.

    A zone's intrazonal cost (the diagonal, 0 in skims) is taken as half the cost to its nearest
    other zone, so that both forms stay finite.
    """
    c = np.array(cost, dtype=np.float64)
    n = c.shape[0]
    if n > 1:
        off = c + np.diag(np.full(n, np.inf))
        nearest = off.min(axis=1)
        diag = np.where(np.isfinite(nearest), 0.5 * nearest, 0.0)
        c[np.arange(n), np.arange(n)] = diag
    finite = np.isfinite(c)
    f = np.zeros_like(c)
    if params.deterrence == "exponential":
        f[finite] = np.exp(-params.beta * (c[finite] - c[finite].min(initial=0.0)))
    elif params.deterrence == "power":
        floor = np.maximum(c[finite], 1e-9)
        f[finite] = floor ** -params.beta
    else:
        raise InvalidParameterError(f"unknown deterrence function {params.deterrence!r}")
    return f


def furness(productions: FloatArray, attractions: FloatArray, weights: FloatArray,
            tolerance: float = 1e-9, max_iterations: int = 10_000) -> Distribution:
    """Balance ``weights`` (zones x zones, >= 0) to row sums ``productions`` and column sums
    ``attractions`` (rescaled to the productions' total), to ``tolerance`` relative error."""
    p = np.asarray(productions, dtype=np.float64)
    a = np.asarray(attractions, dtype=np.float64)
    if (p < 0).any() or (a < 0).any():
        raise NegativeDemandError("productions and attractions must be non-negative")
    if p.sum() <= 0 or a.sum() <= 0:
        return Distribution(np.zeros_like(weights), 0, 0.0)
    a = a * (p.sum() / a.sum())
    row = np.ones_like(p)
    col = np.ones_like(a)
    error = np.inf
    for iteration in range(1, max_iterations + 1):
        row = _safe_ratio(p, weights @ col)
        col = _safe_ratio(a, weights.T @ row)
        trips = row[:, None] * weights * col[None, :]
        error = _margin_error(trips, p, a)
        if error <= tolerance:
            return Distribution(trips, iteration, error)
    raise InvalidParameterError(
        f"Furness balancing did not reach relative error {tolerance} in {max_iterations} "
        f"iterations (error {error:.3g}); some zones may be unreachable from others"
    )


def _safe_ratio(target: FloatArray, current: FloatArray) -> FloatArray:
    out = np.zeros_like(target)
    np.divide(target, current, out=out, where=current > 0)
    return out


def _margin_error(trips: FloatArray, p: FloatArray, a: FloatArray) -> float:
    rows = np.abs(trips.sum(axis=1) - p) / np.maximum(p, 1e-300)
    cols = np.abs(trips.sum(axis=0) - a) / np.maximum(a, 1e-300)
    return float(max(rows[p > 0].max(initial=0.0), cols[a > 0].max(initial=0.0),
                     np.abs(trips.sum(axis=1)[p == 0]).max(initial=0.0)))


def gravity(zones: tuple[Zone, ...], cost: FloatArray, params: GravityDemand) -> Distribution:
    """Distribute ``population * trip_rate`` productions to jobs as attractions."""
    if params.trip_rate < 0 or params.beta < 0:
        raise InvalidParameterError("trip rate and beta must be non-negative")
    productions = np.array([z.population for z in zones]) * params.trip_rate
    attractions = np.array([z.jobs for z in zones], dtype=np.float64)
    return furness(productions, attractions, deterrence(cost, params),
                   params.furness_tolerance, params.max_furness_iterations)
