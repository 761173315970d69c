"""The `cartolog` operator command. Every subcommand answers --help and fails in one line.

Command groups of later areas live in `infra/cli_<area>.py` and register themselves in
`build_parser` with one `register(commands)` call each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import psycopg2
from eventsourcing.persistence import PersistenceError
from kafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from adapters.relay import PublishFailed, republish
from adapters.schema import ensure_database, migrate
from domain.errors import DomainError
from infra import cli_demand, cli_jobs, cli_log, cli_projections, cli_token
from infra.broker import BrokerError, LocalBroker
from infra.cli_support import (
    OPERATOR,
    CliError,
    Commands,
    command,
    container,
    group,
    stop_on_signals,
)
from infra.processes import background_processes
from infra.progress import ProgressBar
from infra.settings import Settings
from infra.wiring import Container, NoBroker, build
from simulation_worker.model.cli import add_model_parser

log = logging.getLogger("cartolog")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cartolog` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except (CliError, DomainError, NoBroker, BrokerError, PublishFailed) as error:
        return _fail(str(error))
    except (SQLAlchemyError, PersistenceError, psycopg2.Error) as error:
        return _fail(_database_reason(error))
    except KafkaError as error:
        return _fail(f"broker error: {error}")
    except KeyboardInterrupt:
        return 130


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
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands: Commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    command(commands, "up", cmd_up, "run the whole local stack in the foreground (Ctrl-C stops)",
            lambda p: p.add_argument("--demo", action="store_true",
                                     help="register the demo tenant and load Sioux Falls"))
    command(commands, "api", cmd_api, "run the HTTP API", _api_options)
    command(commands, "relay", cmd_relay, "relay stored events to Kafka (cartolog.events)")
    db = group(commands, "db", "database schema")
    command(db, "migrate", cmd_migrate, "create or upgrade the event store and read model schema")
    tenant = group(commands, "tenant", "tenants")
    command(tenant, "create", cmd_tenant_create, "register a tenant (its name is its subdomain)",
            _tenant_create_options)
    command(tenant, "list", cmd_tenant_list, "list tenants",
            lambda p: p.add_argument("--json", action="store_true", help="machine-readable"))
    log_group = group(commands, "log", "the event log")
    command(log_group, "republish", cmd_republish,
            "re-send stored events to Kafka, e.g. into an empty broker", _republish_options)
    cli_log.register(log_group)
    add_model_parser(commands)
    cli_token.register(commands)
    cli_projections.register(commands)
    cli_jobs.register(commands)
    cli_demand.register(commands)
    return parser


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
    services = build()
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
    rows = [{"tenant": t.tenant_id, "display_name": t.display_name,
             "registered_at": t.created_on.isoformat()} for t in tenants]
    if args.json:
        print(json.dumps(rows))
    for row in [] if args.json else rows:
        print(f"{row['tenant']:<32} {row['display_name']:<32} {row['registered_at']}")
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
        with stop_on_signals(relay.stop):
            relay.run()
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    """`cartolog api`."""
    with container() as services:
        _serve_api(services, args.host, args.port)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """`cartolog up [--demo]`: broker (unless configured), migrate, processes, API."""
    settings = Settings()
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
        if args.demo:
            _load_demo(services)
        for name, factory in background_processes().items():
            process = factory(services)
            thread = threading.Thread(target=process.run, name=name, daemon=True)
            thread.start()
            stack.callback(thread.join, 30)
            stack.callback(process.stop)
        _print_urls(settings)
        if args.demo and settings.env == "development":
            _print_demo_access(services)
        _serve_api(services, None, None)
    return 0


def _serve_api(services: Container, host: str | None, port: int | None) -> None:
    import uvicorn

    from infra.http import build_api

    settings = services.settings
    uvicorn.run(build_api(services), host=host or settings.api_host,
                port=port or settings.api_port, log_level="info")


def _print_urls(settings: Settings) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    print(f"Cartolog is up:\n  API      {base}/docs\n  ready    {base}/readyz\n"
          f"  broker   {settings.kafka_bootstrap_servers}\n  database {settings.database_url}",
          flush=True)


def _print_demo_access(services: Container) -> None:
    from infra.demo import DEMO_TENANT

    settings = services.settings
    token = services.dev_issuer.issue(DEMO_TENANT, "editor", sub="demo-editor")
    print(f"  workspace http://{DEMO_TENANT}.{settings.base_domain}:{settings.api_port}/\n"
          f"  token    (tenant {DEMO_TENANT}, role editor, 12 h)\n{token}", flush=True)


def _load_demo(services: Container) -> None:
    from infra.demo import load_demo

    load_demo(services)


if __name__ == "__main__":
    sys.exit(main())
