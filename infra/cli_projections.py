"""`cartolog projector` and `cartolog projections status|rebuild|retry|list`."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict

from adapters.projector.queries import statuses
from infra import projections_wiring as wiring
from infra.cli_support import CliError, Commands, command, container, group, stop_on_signals
from infra.progress import ProgressBar
from projections.registry import UnknownProjection

log = logging.getLogger("cartolog")


def register(commands: Commands) -> None:
    """Add the projector and the projections group to the command tree."""
    command(commands, "projector", cmd_projector,
            "apply cartolog.events to the read model (and run the BI sync manager)",
            lambda p: p.add_argument("--no-bi-sync", action="store_true",
                                     help="do not run the live BI sync manager here"))
    projections = group(commands, "projections", "read-model projections")
    command(projections, "status", cmd_status, "each projection: position, lag, last error",
            lambda p: p.add_argument("--json", action="store_true", help="machine-readable"))
    command(projections, "rebuild", cmd_rebuild,
            "replay the log into fresh tables, then swap them in", _rebuild_options)
    command(projections, "retry", cmd_retry,
            "apply recorded errors again (after a fix); resume a stopped projection",
            _retry_options)
    command(projections, "list", cmd_list, "built-in and registered projections")


def _retry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="projection whose errors to retry")
    parser.add_argument("--all", action="store_true", help="every projection")


def _rebuild_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="projection to rebuild")
    parser.add_argument("--all", action="store_true", help="rebuild every projection")
    parser.add_argument("--source", choices=("auto", "kafka", "store"), default="auto",
                        help="where to replay from: the event store (auto, store; the "
                             "system of record, and fastest) or the events topic from "
                             "offset zero (kafka; fails if the broker lost part of the log)")


def cmd_projector(args: argparse.Namespace) -> int:
    """`cartolog projector`: runs until SIGTERM/SIGINT, committing its current batch."""
    with container() as services:
        services.ensure_topics()
        process = wiring.projector_process(services, with_bi_sync=not args.no_bi_sync)
        with stop_on_signals(process.stop):
            process.run()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """`cartolog projections status`."""
    with container() as services:
        found = statuses(services.engine, wiring.projection_names(),
                         services.settings.events_topic)
    if args.json:
        print(json.dumps([asdict(s) for s in found]))
        return 0
    print(f"{'projection':<24} {'state':<8} {'position':>9} {'lag':>6} {'errors':>6}  last error")
    for s in found:
        lag = "-" if s.lag is None else str(s.lag)
        print(f"{s.name:<24} {s.state:<8} {s.position:>9} {lag:>6} {s.errors:>6}  "
              f"{(s.last_error or '')[:80]}")
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """`cartolog projections rebuild NAME|--all`."""
    if bool(args.name) == bool(args.all):
        raise CliError("name one projection, or use --all")
    names = wiring.projection_names() if args.all else [args.name]
    with container() as services:
        for name in names:
            try:
                applied, source = wiring.rebuild(services, name, args.source,
                                                 ProgressBar(f"rebuilding {name}"))
            except UnknownProjection as error:
                raise CliError(str(error)) from None
            except RuntimeError as error:
                raise CliError(f"rebuild of {name} failed: {error}") from None
            print(f"rebuilt {name}: {applied} events replayed from {source}, swapped in")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """`cartolog projections retry NAME|--all`: exits 1 when an event still fails."""
    if bool(args.name) == bool(args.all):
        raise CliError("name one projection, or use --all")
    names = wiring.projection_names() if args.all else [args.name]
    failing = 0
    with container() as services:
        for name in names:
            try:
                outcome = wiring.retry_errors(services, name)
            except UnknownProjection as error:
                raise CliError(str(error)) from None
            resumed = ", resumed" if outcome.resumed else ""
            print(f"{name}: {outcome.applied} applied, {len(outcome.failed)} still failing, "
                  f"{outcome.unavailable} not in the store{resumed}")
            for line in outcome.failed:
                print(f"  {line[:200]}")
            failing += len(outcome.failed)
    return 1 if failing else 0


def cmd_list(_args: argparse.Namespace) -> int:
    """`cartolog projections list`."""
    for name in wiring.projection_names():
        print(name)
    return 0
