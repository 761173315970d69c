"""``cartolog model run``: the built-in model on a TNTP folder, from the command line."""

from __future__ import annotations

import argparse
import csv
import gc
import math
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from simulation_worker.model.assignment import ALGORITHMS
from simulation_worker.model.errors import ModelInputError
from simulation_worker.model.network import AssignmentSettings, CostParameters
from simulation_worker.model.run import ModelResult, run_model
from simulation_worker.model.tntp import TntpCase, load_tntp_folder


def add_model_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``model`` command group (with ``run``) on a CLI's subparsers."""
    model = subparsers.add_parser(
        "model",
        help="run Cartolog's built-in transport model",
        description="Cartolog's built-in transport model (gravity demand + user equilibrium).",
    )
    commands = model.add_subparsers(dest="model_command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="assign a TNTP network's OD matrix to user equilibrium",
        description=(
            "Assign the OD matrix of a TNTP folder (one *_net.tntp, one *_trips.tntp, optional "
            "*_node.tntp and *_flow.tntp; any of them may be gzipped as *.tntp.gz) to static "
            "user equilibrium with BPR costs. Prints the "
            "relative gap, Beckmann objective, iterations, time and peak memory."
        ),
        epilog="exit status: 0 converged, 3 stalled (no progress over a window of "
               "iterations) or iteration limit reached before the gap, 2 invalid input, "
               "1 file error",
    )
    run.add_argument("--network", required=True, type=Path, metavar="DIR",
                     help="folder holding the TNTP files")
    run.add_argument("--gap", type=float, default=1e-5, metavar="G",
                     help="target relative gap (default: 1e-5)")
    run.add_argument("--max-iter", type=int, default=1000, metavar="N",
                     help="iteration limit (default: 1000)")
    run.add_argument("--toll-factor", type=float, default=0.0, metavar="F",
                     help="generalized cost weight of link tolls (default: 0)")
    run.add_argument("--distance-factor", type=float, default=0.0, metavar="F",
                     help="generalized cost weight of link length (default: 0)")
    run.add_argument("--algorithm", choices=ALGORITHMS, default="b", metavar="A",
                     help="b = Algorithm B (default), bfw = bi-conjugate Frank-Wolfe, "
                          "fw = Frank-Wolfe")
    run.add_argument("--unreachable", choices=("refuse", "drop"), default="refuse",
                     help="demand between zones no path joins: refuse the run naming them "
                          "(default), or drop it, assign the rest and report what was dropped")
    run.add_argument("--skims", type=Path, default=None, metavar="FILE.omx",
                     help="write time, distance and cost skims at the converged costs (OMX)")
    run.add_argument("--out", type=Path, default=None, metavar="FILE",
                     help="write link results as CSV (from,to,flow,cost) in _net file order")
    shown = run.add_mutually_exclusive_group()
    shown.add_argument("--progress", dest="progress", action="store_const", const=True,
                       default=None,
                       help="report reading, every iteration's gap and writing on stderr "
                            "(the default when stderr is a terminal)")
    shown.add_argument("--quiet", dest="progress", action="store_const", const=False,
                       help="report nothing but the summary and errors")
    run.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Handle ``model run``; returns the process exit code."""
    say = _Progress(args.progress if args.progress is not None else sys.stderr.isatty())
    try:
        say(f"reading {args.network}")
        case = load_tntp_folder(args.network)
        net = case.network
        say(f"read {net.n_nodes} nodes, {net.n_links} links, {len(case.zones)} zones; "
            "assigning (the first run after an install also compiles the model, about 5 s)")
        model = case.model_input(
            CostParameters(toll_factor=args.toll_factor, distance_factor=args.distance_factor),
            AssignmentSettings(algorithm=args.algorithm, relative_gap=args.gap,
                               max_iterations=args.max_iter, unreachable=args.unreachable),
        )
        started = time.perf_counter()
        result = run_model(model, say.iteration if say.on else None)
        seconds = time.perf_counter() - started
        if args.out is not None:
            say(f"writing {args.out}")
            _write_links(args.out, case, result)
        if args.skims is not None:  # imported here: OMX (PyTables) takes a while to import
            from simulation_worker.model.skims import skims, write_omx

            say(f"writing skims to {args.skims}")
            args.skims.write_bytes(write_omx(skims(model, result.links.flow)))
    except ModelInputError as error:
        print(f"cartolog model run: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"cartolog model run: {error}", file=sys.stderr)
        return 1
    _print_summary(case, result, seconds)
    if result.converged:
        return 0
    print(f"cartolog model run: {result.message}", file=sys.stderr)
    return 3


class _Progress:
    """Stderr lines on a run's steps, each with the seconds since the command began. Iterations
    are reported at most once a second (the first always), so Frank-Wolfe's thousands of short
    iterations do not flood a terminal."""

    EVERY_S = 1.0

    def __init__(self, on: bool) -> None:
        self.on = on
        self.began = time.perf_counter()
        self.last_iteration = -math.inf

    def __call__(self, text: str) -> None:
        if self.on:
            print(f"[{time.perf_counter() - self.began:7.1f} s] {text}", file=sys.stderr,
                  flush=True)

    def iteration(self, iteration: int, gap: float, _seconds: float) -> None:
        now = time.perf_counter()
        if now - self.last_iteration >= self.EVERY_S:
            self.last_iteration = now
            self(f"iteration {iteration:4d}  relative gap {gap:.3e}")


def _print_summary(case: TntpCase, result: ModelResult, seconds: float) -> None:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"network          {case.name}")
    print(f"relative gap     {result.relative_gap:.3e}")
    print(f"beckmann         {result.objective:.10g}")
    print(f"iterations       {result.iterations}")
    print(f"converged        {'yes' if result.converged else 'no'}")
    print(f"outcome          {result.message}")
    if result.unassigned_pairs:
        print(f"unassigned       {result.unassigned_note}")
    print(f"time             {seconds:.3f} s")
    print(f"peak memory      {peak_mb:.1f} MB")


def _write_links(path: Path, case: TntpCase, result: ModelResult) -> None:
    net = case.network
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["from", "to", "flow", "cost"])
        for i in range(net.n_links):
            writer.writerow([int(net.link_from[i]), int(net.link_to[i]),
                             repr(float(result.links.flow[i])),
                             repr(float(result.links.generalized_cost[i]))])


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m simulation_worker.model.cli model run ...``)."""
    parser = argparse.ArgumentParser(prog="cartolog")
    add_model_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = int(args.func(args))
    # The process ends here: spare the interpreter's last collections over numba's type
    # registries, 0.2-0.3 s of exit after any kernel has run (docs/decisions/0134).
    gc.freeze()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
