"""Cold start of ``cartolog model run``: an empty numba cache against a warm one, same run.

For each network (Sioux Falls and Winnipeg from tests/data/networks; ``--networks`` for
others), the command runs as a fresh process with ``NUMBA_CACHE_DIR`` set to a new empty
directory (cold: every kernel is compiled), then with the cache that run left (warm: kernels
are loaded). The figure is the cold whole-process wall time, its baseline the warm one; both
are medians of ``--runs`` runs (default 3), alternating cold and warm so load changes hit
both sides alike. Also reported: the CPU seconds of each side (user + system, less sensitive
to other load on a shared machine than wall time), the model's own time line and the
iterations, which must be the same cold and warm. ``model_entry_*``: the same cold run
through the model's own entry point (``python -m simulation_worker.model.cli``), which does
not import the rest of the ``cartolog`` command (API server, database, broker clients).

A second figure per network, ``<network>_cold_two_processes``, compares the cold run with a
cold run that compiles every kernel in its own process, as before decision 0143 (the same
command with ``compile_ahead``'s helper switched off, also alternating, median of ``--runs``).

    .venv/bin/python -m bench.cold_start [--runs N] [--networks SiouxFalls,Winnipeg]

The acceptance target (docs/model.md, "Cold start"): cold Sioux Falls within 5 s wall and
every test network well within 8 s on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import figure, report  # noqa: E402

NETWORKS = ("SiouxFalls", "Winnipeg", "BerlinFriedrichshain")

# ``cartolog`` with compile_ahead's helper process switched off: every kernel is compiled in
# the run's own process, one after the other (the baseline of decision 0143).
ONE_PROCESS = ("import sys; from simulation_worker.model import compile_ahead; "
               "compile_ahead._start_helper = lambda: None; "
               "from infra.cli import main; sys.argv[0] = 'cartolog'; sys.exit(main())")


def cartolog() -> list[str]:
    """The installed ``cartolog`` console script next to this interpreter."""
    script = Path(sys.executable).with_name("cartolog")
    if not script.exists():
        raise SystemExit(f"no cartolog script at {script}; run infra/provision.sh first")
    return [str(script)]


def run_once(network: str, cache: Path, entry: list[str]) -> dict[str, Any]:
    """One ``model run`` in a fresh process: wall and CPU seconds, model figures."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [*entry, "model", "run", "--network",
         str(REPO / "tests" / "data" / "networks" / network)],
        capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "NUMBA_CACHE_DIR": str(cache)})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{network}: exit {done.returncode}: {done.stderr.strip()[-2000:]}")
    model = re.search(r"^time\s+([0-9.]+) s", done.stdout, re.M)
    iterations = re.search(r"^iterations\s+(\d+)", done.stdout, re.M)
    return {"wall": wall,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "model": float(model.group(1)) if model else float("nan"),
            "iterations": int(iterations.group(1)) if iterations else -1}


def measure(network: str, runs: int) -> list[dict[str, Any]]:
    """Cold and warm runs of one network, alternating; medians of each side."""
    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    model_cold: list[dict[str, Any]] = []
    one_process: list[dict[str, Any]] = []
    model_entry = [sys.executable, "-m", "simulation_worker.model.cli"]
    for _ in range(runs):
        for entry, side in ((cartolog(), cold), (model_entry, model_cold),
                            ([sys.executable, "-c", ONE_PROCESS], one_process)):
            cache = Path(tempfile.mkdtemp(prefix="cartolog-numba-cold-"))
            try:
                side.append(run_once(network, cache, entry))
                if side is cold:
                    warm.append(run_once(network, cache, entry))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    iterations = {r["iterations"] for r in cold + warm + model_cold + one_process}
    if len(iterations) != 1:
        raise RuntimeError(f"{network}: iterations differ between runs: {sorted(iterations)}")

    def median(side: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in side)

    return [figure(
        f"{network}_cold_wall", median(cold, "wall"), "s",
        "same command, warm numba cache", median(warm, "wall"), higher_is_better=False,
        cold_cpu_seconds=round(median(cold, "cpu"), 3),
        warm_cpu_seconds=round(median(warm, "cpu"), 3),
        cold_model_seconds=round(median(cold, "model"), 3),
        warm_model_seconds=round(median(warm, "model"), 3),
        model_entry_cold_wall=round(median(model_cold, "wall"), 3),
        model_entry_cold_cpu_seconds=round(median(model_cold, "cpu"), 3),
        iterations=next(iter(iterations)), runs=runs,
        load_average=round(os.getloadavg()[0], 2)),
        figure(f"{network}_cold_two_processes", median(cold, "wall"), "s",
               "cold, every kernel compiled in the run's process (before 0143)",
               median(one_process, "wall"), higher_is_better=False,
               cpu_seconds=round(median(cold, "cpu"), 3),
               baseline_cpu_seconds=round(median(one_process, "cpu"), 3), runs=runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median)")
    parser.add_argument("--networks", default=",".join(NETWORKS),
                        help="comma-separated folders of tests/data/networks")
    args = parser.parse_args()
    figures = []
    for network in args.networks.split(","):
        figures.extend(measure(network, args.runs))
        print(figures[-2:], file=sys.stderr, flush=True)
    report("cold_start", figures, runs=args.runs)


if __name__ == "__main__":
    main()
