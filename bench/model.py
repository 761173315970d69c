"""Cartolog's built-in assignment vs AequilibraE 1.7.2 on four networks, in the same run.

Cases: Winnipeg and BerlinMPFC (tests/data/networks), Berlin-Center (865 zones, 28,376 links;
bench/data/BerlinCenter, see its SOURCE.md) and the synthetic grid city (2,000 zones, 19,874
links, gravity demand computed once on free-flow costs and given to both sides as an OD
matrix). Each case is assigned to relative gaps 1e-4 and 1e-5 by Cartolog (Algorithm B, the
default) and by AequilibraE (bi-conjugate Frank-Wolfe, all cores).

Every (side, case, gap) runs in a fresh child process. The figure is that child's
**whole-process** wall time (interpreter start, imports, reading the network, numba cache
load, assignment, exit) as measured by this parent, beside its assignment-only time and its
peak resident memory. One run each by default (a full run takes minutes per side on the grid
city); ``--runs N`` alternates the sides N times and reports the median run of each.

AequilibraE is not a runtime dependency: `pip install -e '.[bench]'` (or this script, on first
use) installs it. It refuses free-flow time 0 and BPR power < 1, so it gets a tiny positive
time on zero-time links and power 1 where b = 0; neither changes the problem.

    .venv/bin/python -m bench.model [--quick] [--cases a,b] [--gaps 1e-4,1e-5] [--cores N]
                                    [--baseline-limit SECONDS]

Both sides first run once untimed on Winnipeg (warm byte-code and kernel caches).
``--baseline-limit``: AequilibraE is stopped after that many seconds; such a figure has
``baseline_reached_gap: false`` and its ``ratio`` (ours / limit) is an upper bound of the true
ratio (``ratio_is_upper_bound``).

``--quick``: Winnipeg and BerlinMPFC only (about 2 minutes on an idle 2-core machine).

``winnipeg_2_classes``: cars, and trucks of PCE 2.5 banned from one link type, on Winnipeg,
beside AequilibraE's multi-class assignment to the same gap: ``bench/model_classes.py`` runs
it (assignment time, total-flow differences, the select-link cost) and its figures are
listed here under the case's name (one run: that script's own repetitions).

``chicago_sketch`` (387 zones, 2,950 links; it stalled Algorithm B near gap 6e-8 before
decision 0140) and ``sioux_falls_power_12`` (Sioux Falls with BPR power 12 on every link:
steep costs, which stalled it near 1.7e-4 before decision 0141) are networks the solver was
not tuned on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.model_common import child_main  # noqa: E402

CASES = ("winnipeg", "berlin_mpfc", "berlin_center", "grid_city", "winnipeg_2_classes",
         "chicago_sketch", "sioux_falls_power_12")
QUICK_CASES = ("winnipeg", "berlin_mpfc")
GAPS = (1e-4, 1e-5)
SIDES = ("cartolog", "aequilibrae")


class Stopped(Exception):
    """A child stopped after the time limit, with its peak memory so far."""

    def __init__(self, peak_mb: float | None) -> None:
        super().__init__("stopped")
        self.peak_mb = peak_mb


def _peak_mb(pid: int) -> float | None:
    """A running process's peak resident memory (VmHWM), in MB; None where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def run_child(side: str, case: str, gap: float, cores: int,
              limit: float | None = None) -> dict[str, Any]:
    """One side on one case in a fresh process: its JSON line plus the whole-process time.
    Raises ``Stopped`` if it is still running after ``limit`` seconds."""
    started = time.perf_counter()
    with subprocess.Popen(
            [sys.executable, "-m", "bench.model", "--child", side, case, repr(gap), str(cores)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)}) as child:
        try:
            stdout, stderr = child.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            peak = _peak_mb(child.pid)
            child.kill()
            child.communicate()
            raise Stopped(peak) from None
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"{side} {case} {gap}: {stderr.strip()[-2000:]}")
    figures: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return {**figures, "process_seconds": elapsed}


def _ours(case: str, gap: float, ours: dict[str, Any], cores: int) -> dict[str, Any]:
    """The fields of a figure that come from our run."""
    return {
        "name": f"{case}_gap_{gap:g}", "value": ours["process_seconds"], "unit": "s",
        "baseline": f"AequilibraE 1.7.2 bfw, {cores} cores, whole process",
        "higher_is_better": False, "assignment_seconds": ours["seconds"],
        "iterations": ours["iterations"], "relative_gap": ours["relative_gap"],
        "outcome": ours.get("outcome"), "objective": ours["objective"],
        "peak_mb": ours["peak_mb"], "zones": ours["zones"], "links": ours["links"],
    }


def unfinished(case: str, gap: float, ours: dict[str, Any], limit: float,
               peak_mb: float | None, cores: int) -> dict[str, Any]:
    """The figure when AequilibraE did not reach the gap within ``limit`` seconds: its time is
    more than the limit, so the true ratio is below ours / limit."""
    return {**_ours(case, gap, ours, cores), "baseline_value": limit,
            "baseline_reached_gap": False, "ratio": ours["process_seconds"] / limit,
            "ratio_is_upper_bound": True, "baseline_peak_mb_when_stopped": peak_mb}


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median whole-process time (the upper median of an even count)."""
    return sorted(runs, key=lambda run: run["process_seconds"])[len(runs) // 2]


def figure(case: str, gap: float, ours: dict[str, Any], theirs: dict[str, Any],
           cores: int) -> dict[str, Any]:
    """The bench.md figure for one case and gap: whole-process seconds, ratio to AequilibraE."""
    base = theirs["process_seconds"]
    return {**_ours(case, gap, ours, cores), "baseline_value": base,
            "ratio": ours["process_seconds"] / base,
            "baseline_assignment_seconds": theirs["seconds"],
            "baseline_iterations": theirs["iterations"],
            "baseline_relative_gap": theirs["relative_gap"],
            "baseline_objective": theirs["objective"], "baseline_peak_mb": theirs["peak_mb"]}


def classes_figures(gap: float) -> list[dict[str, Any]]:
    """``bench/model_classes.py`` to ``gap``: its figures, named after the case."""
    done = subprocess.run([sys.executable, "-m", "bench.model_classes", "--gap", repr(gap)],
                          cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"winnipeg_2_classes {gap}: {done.stderr.strip()[-2000:]}")
    found: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])["figures"]
    return [{**f, "name": f"winnipeg_2_classes_gap_{gap:g}: {f['name']}"} for f in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="Winnipeg and BerlinMPFC only")
    parser.add_argument("--cases", default=None, help=f"comma-separated subset of {CASES}")
    parser.add_argument("--gaps", default=",".join(f"{g:g}" for g in GAPS))
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                        help="AequilibraE threads (default: all cores)")
    parser.add_argument("--baseline-limit", type=float, default=None, metavar="SECONDS",
                        help="stop AequilibraE after this long; such a figure's ratio is an "
                             "upper bound (ours / limit, ratio_is_upper_bound)")
    parser.add_argument("--runs", type=int, default=1,
                        help="runs per side, alternating; the figure is the median run")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child)
        return
    cases = args.cases.split(",") if args.cases else QUICK_CASES if args.quick else CASES
    gaps = [float(g) for g in args.gaps.split(",")]
    # Untimed warm-up: both sides' first run after an install pays for byte-compiling their
    # imports (AequilibraE's took 20 s once) and ours for compiling the kernels.
    for side in SIDES:
        run_child(side, "winnipeg", 1e-2, args.cores)
    figures = []
    for case in cases:
        for gap in gaps:
            if case == "winnipeg_2_classes":
                found = classes_figures(gap)
                figures += found
                for one in found:
                    print(json.dumps(one), file=sys.stderr, flush=True)
                continue
            ours_runs, their_runs = [], []
            stopped: Stopped | None = None
            for _ in range(args.runs):  # the sides alternate, so both see the same load
                ours_runs.append(run_child("cartolog", case, gap, args.cores))
                try:
                    their_runs.append(run_child("aequilibrae", case, gap, args.cores,
                                                args.baseline_limit))
                except Stopped as error:
                    stopped = error
            ours = _median_run(ours_runs)
            if stopped is not None:
                assert args.baseline_limit is not None
                figures.append(unfinished(case, gap, ours, args.baseline_limit,
                                          stopped.peak_mb, args.cores))
            else:
                figures.append(figure(case, gap, ours, _median_run(their_runs), args.cores))
            figures[-1]["runs"] = args.runs
            print(json.dumps(figures[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"bench": "model", "runs": args.runs, "figures": figures}))


if __name__ == "__main__":
    main()
