"""Cartolog's built-in assignment vs AequilibraE on Winnipeg, and a synthetic grid city.

Winnipeg (tests/data/networks/Winnipeg) is assigned to relative gaps 1e-4 and 1e-5 by
Cartolog (Algorithm B) and by AequilibraE (bi-conjugate Frank-Wolfe, all cores) in the same run.
Each side runs RUNS times per gap after one untimed warm-up run (numba compilation, imports);
medians are reported. Objectives are the Beckmann objective of each side's flows, computed by
the same routine, relative to the objective of the published best-known flows.

AequilibraE is not a runtime dependency: it is installed into this venv on first use
(``pip install aequilibrae==1.7.2``). It refuses free-flow time 0 and BPR power < 1, so it gets
a tiny positive time on zero-time links and power 1 where b = 0; neither changes the problem.

The grid city (about 2,000 zones and 20,000 links, gravity demand) runs once, in a child
process, to relative gap 1e-4; its time and peak resident memory are reported.

    .venv/bin/python -m bench.model [--quick] [--runs N] [--cores N]

``--quick`` runs each side once and skips the grid city.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.model_common import grid_city, run_aequilibrae  # noqa: E402
from simulation_worker.model import (  # noqa: E402
    AssignmentSettings,
    CostParameters,
    TntpCase,
    assign,
    load_tntp_folder,
    run_model,
)
from simulation_worker.model.costs import beckmann_objective  # noqa: E402
from simulation_worker.model.graph import Graph, build_graph  # noqa: E402

NETWORKS = REPO / "tests" / "data" / "networks"
GAPS = (1e-4, 1e-5)
RUNS = 3
MEMORY_TARGET_MB = 2048.0


def _figure(name: str, value: float, unit: str, baseline: str | None,
            baseline_value: float | None, **extra: Any) -> dict[str, Any]:
    ratio = value / baseline_value if baseline_value else None
    return {"name": name, "value": value, "unit": unit, "baseline": baseline,
            "baseline_value": baseline_value, "ratio": ratio, "higher_is_better": False, **extra}


def _cartolog(case: TntpCase, graph: Graph, gap: float) -> tuple[float, int, float, Any]:
    settings = AssignmentSettings(algorithm="b", relative_gap=gap, max_iterations=2000)
    started = time.perf_counter()
    result = assign(graph, case.trips, settings)
    return time.perf_counter() - started, result.iterations, result.relative_gap, result.flows


def winnipeg_figures(runs: int, cores: int) -> list[dict[str, Any]]:
    """Time, iterations and objective of both sides at each gap."""
    case = load_tntp_folder(NETWORKS / "Winnipeg")
    graph = build_graph(case.network, case.zones, CostParameters())
    assert case.published_flows is not None
    published = beckmann_objective(graph, case.published_flows)
    zone_nodes = [z.centroid for z in case.zones]
    _cartolog(case, graph, 1e-2)  # warm-up: numba compilation / cache load
    run_aequilibrae(case.network, case.trips, zone_nodes, 1e-2, 1000, cores)
    figures = []
    for gap in GAPS:
        ours = [_cartolog(case, graph, gap) for _ in range(runs)]
        theirs = [run_aequilibrae(case.network, case.trips, zone_nodes, gap, 20000, cores)
                  for _ in range(runs)]
        our_obj = beckmann_objective(graph, ours[-1][3])
        their_obj = beckmann_objective(graph, theirs[-1].flows)
        figures.append(_figure(
            f"winnipeg_gap_{gap:g}", median(o[0] for o in ours), "s",
            f"AequilibraE 1.7.2 bfw, {cores} cores", median(t.seconds for t in theirs),
            iterations=ours[-1][1], baseline_iterations=theirs[-1].iterations,
            relative_gap=ours[-1][2], baseline_relative_gap=theirs[-1].relative_gap,
            objective=our_obj, baseline_objective=their_obj, published_objective=published,
            objective_rel_error=(our_obj - published) / published,
            baseline_objective_rel_error=(their_obj - published) / published,
            objective_equal_or_better=bool(our_obj <= their_obj),
        ))
        print(json.dumps(figures[-1]), file=sys.stderr)
    return figures


def grid_child() -> None:
    """Run the grid city once and print its figures as JSON (called in a child process)."""
    model = grid_city()
    started = time.perf_counter()
    result = run_model(model)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds, "iterations": result.iterations,
        "relative_gap": result.relative_gap, "zones": len(model.zones),
        "links": model.network.n_links, "nodes": model.network.n_nodes,
        "total_trips": result.indicators.total_trips,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


def grid_figures() -> list[dict[str, Any]]:
    """Time and peak memory of the grid city, measured in a fresh process."""
    child = subprocess.run([sys.executable, "-m", "bench.model", "--grid-child"], cwd=REPO,
                           capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    grid = json.loads(child.stdout.strip().splitlines()[-1])
    shape = {k: grid[k] for k in ("zones", "links", "nodes", "iterations", "relative_gap",
                                  "total_trips")}
    return [
        _figure("grid_city_time_gap_1e-4", grid["seconds"], "s", None, None, **shape),
        _figure("grid_city_peak_memory", grid["peak_mb"], "MB", "2 GB target",
                MEMORY_TARGET_MB, **shape),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one run per side, no grid city")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs per side and gap")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                        help="AequilibraE threads (default: all cores)")
    parser.add_argument("--grid-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.grid_child:
        grid_child()
        return
    runs = 1 if args.quick else args.runs
    figures = winnipeg_figures(runs, args.cores)
    if not args.quick:
        figures += grid_figures()
    print(json.dumps({"bench": "model", "runs": runs, "figures": figures}))


if __name__ == "__main__":
    main()
