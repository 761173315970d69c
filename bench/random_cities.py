"""Algorithm B on seeded random cities (``bench/random_city.py``), side by side.

Two figures, both sides in the same run:

- ``one_class_iterations``: the iterations one class needs over ``--cities`` cities, each
  solved at 2.5 times its demand to gap 1e-8 and at its demand to gap 1e-9 (at most 400
  iterations each), with the doubled sweeps refreshing every bush every second sweep
  (decision 0144) against the sweeps skipping settled bushes throughout (before 0144).
  Also: how many runs converged on each side, and their seconds.
- ``two_classes_converged_oversaturated``: how many of the cities, at 8 times their demand
  (``--scale``; the busiest link near 9 times its capacity), reach gap 1e-6 within 400
  iterations with cars and PCE-2.5 trucks that pay a distance cost (0.3 per length unit):
  with the exchanges
  between an origin's classes and the longer stagnation window of decision 0145, against
  the same runs without them (before 0145). The distance cost makes the classes want
  different paths; near capacity each class's own Newton steps only crawl towards the
  split. Also: the iterations both sides took, and how many of the same cities converge
  without the distance cost (the classes then never want to exchange).

Iterations and convergence do not depend on the machine, so each side runs once (after one
untimed city, so neither side pays for compiling the kernels); the seconds are those of that
run.

    .venv/bin/python -m bench.random_cities [--cities 40] [--scale 8] [--first-seed 0]

``--scale`` and ``--first-seed`` change the two-class runs only (cities nobody tuned on, at
other loads: ``--scale 12 --first-seed 40 --cities 50``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import figure, report  # noqa: E402


def one_class(cities: int, refresh: int | None) -> dict[str, Any]:
    """Iterations, converged runs and seconds of one class over the cities."""
    from bench.random_city import random_city
    from simulation_worker.model import assignment, run_model

    before = assignment._REFRESH
    assignment._REFRESH = refresh
    try:
        iterations = converged = 0
        started = time.perf_counter()
        for seed in range(cities):
            for scale, gap in ((2.5, 1e-8), (1.0, 1e-9)):
                result = run_model(random_city(seed, scale=scale, gap=gap))
                iterations += result.iterations
                converged += int(result.converged)
        return {"iterations": iterations, "converged": converged,
                "seconds": round(time.perf_counter() - started, 2)}
    finally:
        assignment._REFRESH = before


def two_classes(cities: int, distance_factor: float, exchange: bool, scale: float = 8.0,
                first: int = 0) -> dict[str, Any]:
    """Converged runs and iterations of cars and trucks over the cities ``first`` to
    ``first + cities - 1`` at ``scale`` times their demand, with or without decision 0145's
    exchanges and stagnation window."""
    from bench.model_common import class_exchange_rules
    from bench.random_city import random_city
    from simulation_worker.model import AssignmentSettings, ExplicitDemand
    from simulation_worker.model.classes import VehicleClass, assign_classes

    with class_exchange_rules(exchange):
        classes = (VehicleClass("car"),
                   VehicleClass("truck", pce=2.5, distance_factor=distance_factor))
        converged = iterations = 0
        gaps = []
        started = time.perf_counter()
        for seed in range(first, first + cities):
            model = random_city(seed, scale=scale, gap=1e-6)
            assert isinstance(model.demand, ExplicitDemand)
            trips = np.asarray(model.demand.trips)
            result = assign_classes(model, {"car": trips, "truck": 0.2 * trips}, classes,
                                    AssignmentSettings(relative_gap=1e-6, max_iterations=400))
            converged += int(result.converged)
            iterations += result.iterations
            gaps.append(result.relative_gap)
        return {"converged": converged, "iterations": iterations,
                "worst_gap": float(max(gaps)),
                "seconds": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cities", type=int, default=40, help="seeded cities (default 40)")
    parser.add_argument("--scale", type=float, default=8.0,
                        help="the two-class runs' multiple of the demand (default 8)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the two-class runs' first city (default 0)")
    args = parser.parse_args()
    cities, scale, first = args.cities, args.scale, args.first_seed
    one_class(1, 2)  # compile or load the kernels before either side is timed
    now = one_class(cities, 2)
    then = one_class(cities, None)
    print({"refresh every second sweep": now, "skip throughout": then}, file=sys.stderr)
    now_two = two_classes(cities, 0.3, True, scale, first)
    then_two = two_classes(cities, 0.3, False, scale, first)
    no_distance = two_classes(cities, 0.0, True, scale, first)
    print({"0145": now_two, "before 0145": then_two, "no distance cost": no_distance},
          file=sys.stderr)
    runs = 2 * cities
    report("random_cities", [
        figure("one_class_iterations", now["iterations"], "iterations",
               "extra sweeps skip settled bushes throughout (before 0144)", then["iterations"],
               higher_is_better=False, runs=runs, converged=now["converged"],
               baseline_converged=then["converged"], seconds=now["seconds"],
               baseline_seconds=then["seconds"]),
        figure("two_classes_converged_oversaturated", now_two["converged"], "cities",
               "the same runs without 0145's exchanges and stagnation window",
               then_two["converged"], cities=cities, iterations=now_two["iterations"],
               baseline_iterations=then_two["iterations"], worst_gap=now_two["worst_gap"],
               baseline_worst_gap=then_two["worst_gap"], seconds=now_two["seconds"],
               baseline_seconds=then_two["seconds"],
               converged_without_distance_cost=no_distance["converged"],
               demand_scale=scale, first_seed=first),
    ], cities=cities)


if __name__ == "__main__":
    main()
