"""`cartolog worker`, `recorder`, `dispatcher` and `dlq list|redrive`."""

from __future__ import annotations

import argparse
import json
import uuid

from infra import jobs_wiring
from infra.cli_support import (
    OPERATOR,
    CliError,
    Commands,
    command,
    container,
    group,
    stop_on_signals,
)


def register(commands: Commands) -> None:
    """Add the job pipeline's commands."""
    command(commands, "worker", cmd_worker, "run one simulation worker (group cartolog-workers)")
    command(commands, "recorder", cmd_recorder,
            "record simulation results as SimulationRun events")
    command(commands, "dispatcher", cmd_dispatcher,
            "turn simulation requests, retries and redrives into job messages")
    dlq = group(commands, "dlq", "dead-lettered simulation runs")
    command(dlq, "list", cmd_dlq_list, "list dead-lettered runs with their last error",
            lambda p: p.add_argument("--json", action="store_true", help="machine-readable"))
    command(dlq, "redrive", cmd_dlq_redrive, "give dead-lettered runs a fresh set of attempts",
            _redrive_options)


def _redrive_options(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("run_id", nargs="?", help="the run to redrive")
    target.add_argument("--all", action="store_true", help="every dead-lettered run")


def cmd_worker(_args: argparse.Namespace) -> int:
    """`cartolog worker`: runs until SIGTERM (then finishes its job within the grace)."""
    with container() as services:
        services.ensure_topics()
        loop = jobs_wiring.worker(services)
        with stop_on_signals(loop.stop):
            loop.run()
    return 0


def cmd_recorder(_args: argparse.Namespace) -> int:
    """`cartolog recorder`."""
    with container() as services:
        services.ensure_topics()
        loop = jobs_wiring.recorder(services)
        with stop_on_signals(loop.stop):
            loop.run()
    return 0


def cmd_dispatcher(_args: argparse.Namespace) -> int:
    """`cartolog dispatcher`."""
    with container() as services:
        services.ensure_topics()
        loop = jobs_wiring.dispatcher(services)
        with stop_on_signals(loop.stop):
            loop.run()
    return 0


def cmd_dlq_list(args: argparse.Namespace) -> int:
    """`cartolog dlq list`."""
    with container() as services:
        runs = services.app.dead_lettered_runs()
    rows = [{"run_id": str(r.id), "tenant": r.tenant_id, "model": r.model,
             "attempts": r.attempt, "error": r.last_error} for r in runs]
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        print(f"{row['run_id']}  {row['tenant']:<16} {row['model']:<9} "
              f"attempts={row['attempts']}  {row['error']}")
    print(f"{len(rows)} dead-lettered run(s)")
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    """`cartolog dlq redrive RUN_ID|--all`."""
    with container() as services:
        app = services.app
        if args.all:
            runs = app.dead_lettered_runs()
        else:
            try:
                runs = [app.find_run(uuid.UUID(args.run_id))]
            except ValueError:
                raise CliError(f"{args.run_id!r} is not a run id") from None
        for run in runs:
            app.redrive_run(run.tenant_id, run.id, OPERATOR)
            print(f"redriven {run.id}")
    print(f"{len(runs)} run(s) redriven")
    return 0
