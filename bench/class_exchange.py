"""Cars and distance-paying trucks on the shipped TNTP networks, with and without the
exchanges between an origin's classes (decision 0145), in the same run.

Each network (``tests/data/networks``) carries twice its demand: 90 % cars, 10 % trucks of
PCE 2.5 that pay a distance cost worth 30 % of the network's free-flow time per length unit.
Multi-class Algorithm B solves it to gap 1e-8 (at most 400 iterations) with the exchanges
and the multi-class stagnation window of 0145, and without them (before 0145). Figures: the
iterations and seconds over all networks, side by side, with each network's beside them.
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

NETWORKS = ("SiouxFalls", "Winnipeg", "BerlinFriedrichshain", "BerlinMPFC",
            "BerlinTiergarten", "EasternMassachusetts")
GAP = 1e-8


def solve(name: str, exchange: bool) -> tuple[int, float, bool]:
    """Iterations, seconds and convergence of one network, with or without 0145."""
    from simulation_worker.model import AssignmentSettings, CostParameters, load_tntp_folder
    from simulation_worker.model import classes as multi

    settings = AssignmentSettings(relative_gap=GAP, max_iterations=400)
    model = load_tntp_folder(REPO / "tests" / "data" / "networks" / name).model_input(
        CostParameters(), settings)
    net = model.network
    per_length = 0.3 * float(np.sum(net.free_flow_time) / np.sum(net.length))
    trips = 2.0 * np.asarray(model.demand.trips)  # type: ignore[union-attr]
    classes = (multi.VehicleClass("car"),
               multi.VehicleClass("truck", pce=2.5, distance_factor=per_length))
    rules = multi.EXCHANGE, multi.STALL_RULE
    multi.EXCHANGE, multi.STALL_RULE = (True, "b-classes") if exchange else (False, "b")
    try:
        started = time.perf_counter()
        result = multi.assign_classes(model, {"car": 0.9 * trips, "truck": 0.1 * trips},
                                      classes, settings)
        return result.iterations, time.perf_counter() - started, result.converged
    finally:
        multi.EXCHANGE, multi.STALL_RULE = rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each side")
    args = parser.parse_args()
    solve("SiouxFalls", True)  # load (or compile) the kernels before anything is timed
    sides: dict[bool, dict[str, Any]] = {True: {}, False: {}}
    for name in NETWORKS:
        seconds: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(max(1, args.runs)):
            for exchange in (True, False):
                iterations, spent, converged = solve(name, exchange)
                seconds[exchange].append(spent)
                sides[exchange][name] = {"iterations": iterations, "converged": converged}
        for exchange in (True, False):
            sides[exchange][name]["seconds"] = round(statistics.median(seconds[exchange]), 3)
        print({name: {"0145": sides[True][name], "before": sides[False][name]}},
              file=sys.stderr)

    def total(exchange: bool, key: str) -> float:
        return float(sum(v[key] for v in sides[exchange].values()))

    report("class_exchange", [
        figure("iterations_to_1e-8", total(True, "iterations"), "iterations",
               "the same runs without 0145's exchanges", total(False, "iterations"),
               higher_is_better=False, networks=sides[True],
               baseline_networks=sides[False],
               converged=int(total(True, "converged")),
               baseline_converged=int(total(False, "converged"))),
        figure("seconds_to_1e-8", round(total(True, "seconds"), 3), "s",
               "the same runs without 0145's exchanges", round(total(False, "seconds"), 3),
               higher_is_better=False, runs=args.runs),
    ], gap=GAP, demand_scale=2.0)


if __name__ == "__main__":
    main()
