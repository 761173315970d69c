"""The `cartolog` operator commands (infra/cli.py is the console script that reaches them).
Every subcommand answers --help and fails in one line.

Command groups of later areas live in `infra/cli_<area>.py` and register themselves in
`build_parser` with one `register(commands)` call each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg2
import uvicorn
from eventsourcing.persistence import PersistenceError
from kafka.errors import KafkaError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from adapters.relay import PublishFailed, republish
from adapters.schema import ensure_database, migrate
from api.services import ReadinessCheck
from domain.errors import DomainError, InvalidCommand
from infra import cli_demand, cli_gis, cli_jobs, cli_log, cli_projections, cli_token
from infra.broker import BrokerError, LocalBroker
from infra.cli_support import (
    OPERATOR,
    CliError,
    Commands,
    command,
    container,
    group,
    process_settings,
    stop_on_signals,
    use_settings,
)
from infra.logs import FORMATS, LEVELS, configure_logging
from infra.processes import background_processes, child_processes
from infra.progress import ProgressBar
from infra.supervision import ProcessThreads
from infra.supervisor import Supervisor, child_env
from infra.wiring import Container, NoBroker, build, load_settings, warn_about_unknown_variables
from simulation_worker.model.cli import add_model_parser

log = logging.getLogger("cartolog")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cartolog` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as error:
        return _fail(f"invalid configuration: {_first_problem(error)}")
    configure_logging("debug" if args.verbose else args.log_level or settings.log_level,
                      args.log_format or settings.log_format)
    warn_about_unknown_variables()
    use_settings(settings)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except InvalidCommand as error:
        return _fail(_with_problems(error))
    except (CliError, DomainError, NoBroker, BrokerError, PublishFailed) as error:
        return _fail(str(error))
    except (SQLAlchemyError, PersistenceError, psycopg2.Error) as error:
        return _fail(_database_reason(error))
    except KafkaError as error:
        return _fail(f"broker error: {error}")
    except KeyboardInterrupt:
        return 130


def _with_problems(error: InvalidCommand) -> str:
    """The refusal and its first reason, on one line ("...: <reason> (and 2 more)")."""
    reasons = [p for p in error.problems if p != str(error)]
    if not reasons:
        return str(error)
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return f"{error}: {reasons[0]}{more}"


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}" if where else str(problem["msg"])


def _database_reason(error: Exception) -> str:
    text = str(error).strip()
    first_line = text.splitlines()[0] if text else repr(error)
    hint = " (run `cartolog db migrate`)" if "does not exist" in first_line else ""
    return f"database error: {first_line}{hint}"


def _fail(reason: str) -> int:
    print(f"cartolog: error: {reason}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(
        prog="cartolog", description="Operate Cartolog: run its processes, manage the log.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging (same as --log-level debug)")
    parser.add_argument("--log-level", choices=LEVELS,
                        help="lowest level logged (default CARTOLOG_LOG_LEVEL, else warning)")
    parser.add_argument("--log-format", choices=FORMATS,
                        help="text, or one JSON object per line (default CARTOLOG_LOG_FORMAT)")
    commands: Commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    command(commands, "up", cmd_up, "run the whole local stack in the foreground (Ctrl-C stops)",
            _up_options)
    command(commands, "api", cmd_api, "run the HTTP API", _api_options)
    command(commands, "relay", cmd_relay, "relay stored events to Kafka (cartolog.events)")
    db = group(commands, "db", "database schema")
    command(db, "migrate", cmd_migrate, "create or upgrade the event store and read model schema")
    tenant = group(commands, "tenant", "tenants")
    command(tenant, "create", cmd_tenant_create, "register a tenant (its name is its subdomain)",
            _tenant_create_options)
    command(tenant, "list", cmd_tenant_list, "list tenants",
            lambda p: p.add_argument("--json", action="store_true", help="machine-readable"))
    command(tenant, "quota", cmd_tenant_quota,
            "set a tenant's storage quota (its networks, matrices and run files)",
            _tenant_quota_options)
    log_group = group(commands, "log", "the event log")
    command(log_group, "republish", cmd_republish,
            "re-send stored events to Kafka, e.g. into an empty broker", _republish_options)
    cli_log.register(log_group)
    add_model_parser(commands)
    cli_token.register(commands)
    cli_projections.register(commands)
    cli_jobs.register(commands)
    cli_gis.register(commands)
    cli_demand.register(commands)
    return parser


def _up_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", action="store_true",
                        help="register the demo tenant and load Sioux Falls")
    parser.add_argument("--workers", type=_count, metavar="N",
                        help="simulation worker processes (default CARTOLOG_WORKERS)")


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a number of workers: {text!r}")
    return int(text)


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default CARTOLOG_API_HOST)")
    parser.add_argument("--port", type=int, help="port (default CARTOLOG_API_PORT)")


def _tenant_create_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="DNS label: lowercase letters, digits, inner hyphens")
    parser.add_argument("--display-name", default="", help="human-readable name")


def _republish_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", type=int, default=0, metavar="POSITION",
                        help="send events after this notification id (default 0: everything)")
    parser.add_argument("--to", dest="stop", type=int, default=None, metavar="POSITION",
                        help="last notification id to send (default: the store head)")


def cmd_migrate(_args: argparse.Namespace) -> int:
    """`cartolog db migrate`."""
    services = build(process_settings())
    try:
        created = ensure_database(services.settings.database_url)
        migrate(services.engine)
    finally:
        services.close()
    print(f"schema up to date{' (database created)' if created else ''}")
    return 0


def cmd_tenant_create(args: argparse.Namespace) -> int:
    """`cartolog tenant create NAME`."""
    with container() as services:
        services.app.register_tenant(args.name, OPERATOR, args.display_name)
    print(f"tenant {args.name} created")
    return 0


def cmd_tenant_list(args: argparse.Namespace) -> int:
    """`cartolog tenant list`."""
    with container() as services:
        tenants = services.app.list_tenants()
        quotas = {t.tenant_id: services.blobs.quota_in_force(t.storage_quota_mb)
                  for t in tenants}  # the tenants are loaded: no second read per tenant
        rows = [{"tenant": t.tenant_id, "display_name": t.display_name,
                 "registered_at": t.created_on.isoformat(),
                 "storage_used_mb": round(services.blobs.used_bytes(t.tenant_id) / 2**20, 3),
                 "storage_quota_mb": _mib_or_none(quotas[t.tenant_id]),
                 "storage_quota_own": t.storage_quota_mb is not None}
                for t in tenants]
    if args.json:
        print(json.dumps(rows))
    for row in [] if args.json else rows:
        used = f"{row['storage_used_mb']:,.1f}"
        of = "no limit" if row["storage_quota_mb"] is None else \
            f"{row['storage_quota_mb']:,.0f}"
        print(f"{row['tenant']:<32} {row['display_name']:<32} {row['registered_at']}  "
              f"{used} of {of} MiB stored")
    return 0


def _mib_or_none(quota: int | None) -> float | None:
    return None if quota is None else round(quota / 2**20, 3)


def _tenant_quota_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the tenant")
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--mb", type=float, help="the quota in MiB (0: no limit)")
    chosen.add_argument("--default", action="store_true",
                        help="take the server's CARTOLOG_TENANT_STORAGE_MB again")


def cmd_tenant_quota(args: argparse.Namespace) -> int:
    """`cartolog tenant quota NAME --mb N | --default`: recorded as an event on the tenant,
    in force for its next stored file in every process."""
    megabytes = None if args.default else args.mb
    with container() as services:
        changed = services.app.set_tenant_storage_quota(args.name, megabytes, OPERATOR)
        quota = services.blobs.quota_of(args.name)
        used = services.blobs.used_bytes(args.name)
    of = "no limit" if quota is None else f"{quota / 2**20:,.0f} MiB"
    source = "the server's default" if megabytes is None else "its own"
    print(f"tenant {args.name}: quota {of} ({source}{'' if changed else ', unchanged'}); "
          f"{used / 2**20:,.1f} MiB stored")
    return 0


def cmd_republish(args: argparse.Namespace) -> int:
    """`cartolog log republish [--from POSITION]`."""
    with container() as services:
        services.ensure_topics()
        sent = republish(services.reader(), services.publisher(), args.start, args.stop,
                         progress=ProgressBar("republish"))
        topic = services.settings.events_topic
    print(f"republished {sent} events to {topic}")
    return 0


def cmd_relay(_args: argparse.Namespace) -> int:
    """`cartolog relay`: runs until SIGTERM/SIGINT."""
    with container() as services:
        services.ensure_topics()
        relay = services.relay()
        print(f"cartolog relay: publishing to {services.settings.events_topic}", flush=True)
        with stop_on_signals(relay.stop):
            relay.run()
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    """`cartolog api`."""
    with container() as services:
        settings = services.settings
        where = f"http://{args.host or settings.api_host}:{args.port or settings.api_port}"
        _serve_api(services, args.host, args.port, on_ready=lambda: print(
            f"cartolog api: serving {where}", flush=True))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """`cartolog up [--demo] [--workers N]`: broker (unless configured), migrate, processes
    (threads, and supervised children for the projector and the workers), API."""
    settings = process_settings()
    with contextlib.ExitStack() as stack:
        if not settings.kafka_bootstrap_servers:
            Path(".cartolog").mkdir(exist_ok=True)
            broker = stack.enter_context(LocalBroker(log_file=Path(".cartolog/broker.log")))
            settings = settings.model_copy(
                update={"kafka_bootstrap_servers": broker.bootstrap_servers})
        ensure_database(settings.database_url)
        services = build(settings)
        stack.callback(services.close)
        migrate(services.engine)
        services.ensure_topics()
        _say(f"broker     {settings.kafka_bootstrap_servers}")
        if args.demo:
            _load_demo(services)
        threads = ProcessThreads()
        for name, factory in background_processes().items():
            process = factory(services)
            stack.callback(threads.start(name, process).join, 30)
            stack.callback(process.stop)
            _say(f"{name:<10} started")
        children = Supervisor(child_processes(settings, args.workers),
                              child_env(services.bootstrap_servers))
        children.start()
        stack.callback(children.stop)
        for name in child_processes(settings, args.workers):
            _say(f"{name:<10} started (child process)")
        _serve_api(services, None, None, {"processes": threads.check},
                   on_ready=lambda: _print_ready(services, args.demo))
    _say("stopped")
    return 0


def _serve_api(services: Container, host: str | None, port: int | None,
               checks: Mapping[str, ReadinessCheck] | None = None,
               on_ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM; `on_ready` runs once the socket accepts requests."""
    from infra.http import build_api

    settings = services.settings
    server = _Server(uvicorn.Config(
        build_api(services, checks=checks), host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=logging.getLevelName(logging.getLogger().level).lower(), log_config=None,
        access_log=False))
    if on_ready is not None:
        threading.Thread(target=_when_serving, args=(server, on_ready), name="ready",
                         daemon=True).start()
    server.run()


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the stopping signal once it has stopped: a
    re-raised SIGTERM would kill the process before `cartolog up` stops its threads and
    its broker."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT,
                                                                     signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _when_serving(server: Any, on_ready: Callable[[], None]) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        on_ready()


def _say(line: str) -> None:
    print(f"cartolog up: {line}", flush=True)


def _print_ready(services: Container, demo: bool) -> None:
    """The last lines `cartolog up` prints: the URLs, and the demo's workspace and token."""
    settings = services.settings
    base = f"http://{settings.api_host}:{settings.api_port}"
    lines = ["Cartolog is ready (Ctrl-C stops)", f"  API        {base}/docs"]
    if demo and settings.env == "development":
        from infra.demo import DEMO_TENANT

        token = services.dev_issuer.issue(DEMO_TENANT, "editor", sub="demo-editor")
        lines += [f"  workspace  http://{DEMO_TENANT}.{settings.base_domain}:{settings.api_port}/",
                  f"  token      (tenant {DEMO_TENANT}, role editor, 12 h):", token]
    print("\n".join(lines), flush=True)


def _load_demo(services: Container) -> None:
    from infra.demo import load_demo

    load_demo(services)


if __name__ == "__main__":
    sys.exit(main())
