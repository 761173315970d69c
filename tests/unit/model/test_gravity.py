"""The doubly-constrained gravity model reproduces its margins (property-based)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from simulation_worker.model import GravityDemand, Zone
from simulation_worker.model.gravity import furness, gravity

sizes = st.integers(min_value=2, max_value=12)
positive = st.floats(min_value=1.0, max_value=1e5, allow_nan=False, allow_infinity=False)


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    n = draw(sizes)
    productions = draw(arrays(np.float64, n, elements=positive))
    attractions = draw(arrays(np.float64, n, elements=positive))
    costs = draw(arrays(np.float64, (n, n), elements=st.floats(0.5, 60.0)))
    beta = draw(st.floats(0.0, 0.2))
    return productions, attractions, costs, beta


@settings(max_examples=60, deadline=None)
@given(problems(), st.sampled_from(["exponential", "power"]))
def test_gravity_reproduces_productions_and_attractions(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray, float], form: str
) -> None:
    productions, attractions, costs, beta = problem
    zones = tuple(Zone(id=i + 1, centroid=i + 1, population=float(p), jobs=float(a))
                  for i, (p, a) in enumerate(zip(productions, attractions, strict=True)))
    params = GravityDemand(trip_rate=1.0, deterrence=form, beta=beta)  # type: ignore[arg-type]
    trips = gravity(zones, costs, params).trips
    scaled = attractions * productions.sum() / attractions.sum()
    assert np.all(trips >= 0)
    np.testing.assert_allclose(trips.sum(axis=1), productions, rtol=1e-6)
    np.testing.assert_allclose(trips.sum(axis=0), scaled, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_furness_keeps_the_odds_ratios_of_the_seed(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray, float],
) -> None:
    productions, attractions, costs, _ = problem
    seed = np.exp(-0.05 * costs)
    trips = furness(productions, attractions, seed).trips
    # T_ij = a_i b_j f_ij, so T_ij T_kl / (T_il T_kj) equals the seed's cross ratio.
    cross = trips[0, 0] * trips[1, 1] / (trips[0, 1] * trips[1, 0])
    expected = seed[0, 0] * seed[1, 1] / (seed[0, 1] * seed[1, 0])
    assert cross == np.float64(expected) or abs(cross / expected - 1) < 1e-9


def test_zero_production_zone_sends_nothing() -> None:
    trips = furness(np.array([0.0, 10.0]), np.array([5.0, 5.0]), np.ones((2, 2))).trips
    assert trips[0].sum() == 0.0
    np.testing.assert_allclose(trips[1].sum(), 10.0)
