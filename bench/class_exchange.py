"""Several classes on the shipped TNTP networks, with and without the exchanges between an
origin's classes (decision 0145), in the same run.

Two class sets on each network (``tests/data/networks``), solved by multi-class Algorithm B
to gap 1e-8 (at most 400 iterations) with the exchanges and the multi-class stagnation
window of 0145, and without them (before 0145):

- ``trucks``: twice the network's demand, 90 % cars and 10 % trucks of PCE 2.5 that pay a
  distance cost worth 30 % of the network's free-flow time per length unit;
- ``tolled``: the network's demand, with a toll of 30 % of the free-flow time on every
  seventh link, 80 % cars (toll factor 1), 10 % vans (PCE 1.5, value of time 1.5, toll 1, a
  tenth of the trucks' distance cost) and 10 % trucks (PCE 2.5, value of time 2, toll 2,
  the distance cost above): classes whose costs differ a little almost everywhere, where
  exchanges save few iterations and must not cost time.

Figures per set: the iterations and seconds over all networks, side by side, with each
network's beside them.
Iterations do not depend on the machine; seconds are the median of ``--runs`` runs of each
side (default 3), the sides alternating, after one untimed run that loads the kernels.

    .venv/bin/python -m bench.class_exchange [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import figure, report  # noqa: E402
from bench.model_common import class_exchange_rules  # noqa: E402

NETWORKS = ("SiouxFalls", "Winnipeg", "BerlinFriedrichshain", "BerlinMPFC",
            "BerlinTiergarten", "EasternMassachusetts")
GAP = 1e-8
CASES = ("trucks", "tolled")


def solve(name: str, case: str, exchange: bool) -> tuple[int, float, bool]:
    """Iterations, seconds and convergence of one network and class set, with or without
    0145."""
    from dataclasses import replace

    from simulation_worker.model import AssignmentSettings, CostParameters, load_tntp_folder
    from simulation_worker.model import classes as multi

    settings = AssignmentSettings(relative_gap=GAP, max_iterations=400)
    model = load_tntp_folder(REPO / "tests" / "data" / "networks" / name).model_input(
        CostParameters(), settings)
    net = model.network
    per_length = 0.3 * float(np.sum(net.free_flow_time) / np.sum(net.length))
    trips = np.asarray(model.demand.trips)  # type: ignore[union-attr]
    truck = multi.VehicleClass("truck", pce=2.5, distance_factor=per_length)
    classes: tuple[multi.VehicleClass, ...]
    if case == "trucks":
        classes = (multi.VehicleClass("car"), truck)
        demand = {"car": 1.8 * trips, "truck": 0.2 * trips}
    else:
        tolled = np.arange(net.n_links) % 7 == 0
        model = replace(model, network=replace(
            net, toll=np.where(tolled, 0.3 * net.free_flow_time, 0.0)))
        classes = (multi.VehicleClass("car", toll_factor=1.0),
                   multi.VehicleClass("van", pce=1.5, value_of_time=1.5, toll_factor=1.0,
                                      distance_factor=0.1 * per_length),
                   replace(truck, value_of_time=2.0, toll_factor=2.0))
        demand = {"car": 0.8 * trips, "van": 0.1 * trips, "truck": 0.1 * trips}
    with class_exchange_rules(exchange):
        started = time.perf_counter()
        result = multi.assign_classes(model, demand, classes, settings)
        return result.iterations, time.perf_counter() - started, result.converged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each side")
    args = parser.parse_args()
    solve("SiouxFalls", "tolled", True)  # load (or compile) the kernels before any timing
    figures = []
    for case in CASES:
        sides: dict[bool, dict[str, Any]] = {True: {}, False: {}}
        for name in NETWORKS:
            seconds: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(max(1, args.runs)):
                for exchange in (True, False):
                    iterations, spent, converged = solve(name, case, exchange)
                    seconds[exchange].append(spent)
                    sides[exchange][name] = {"iterations": iterations, "converged": converged}
            for exchange in (True, False):
                sides[exchange][name]["seconds"] = round(statistics.median(seconds[exchange]),
                                                         3)
            print({case: {name: {"0145": sides[True][name], "before": sides[False][name]}}},
                  file=sys.stderr)

        def total(exchange: bool, key: str, sides: dict[bool, dict[str, Any]] = sides
                  ) -> float:
            return float(sum(v[key] for v in sides[exchange].values()))

        figures += [
            figure(f"{case}_iterations_to_1e-8", total(True, "iterations"), "iterations",
                   "the same runs without 0145's exchanges", total(False, "iterations"),
                   higher_is_better=False, networks=sides[True],
                   baseline_networks=sides[False],
                   converged=int(total(True, "converged")),
                   baseline_converged=int(total(False, "converged"))),
            figure(f"{case}_seconds_to_1e-8", round(total(True, "seconds"), 3), "s",
                   "the same runs without 0145's exchanges", round(total(False, "seconds"), 3),
                   higher_is_better=False, runs=args.runs),
        ]
    report("class_exchange", figures, gap=GAP)


if __name__ == "__main__":
    main()
