"""`cartolog log tail|show|stats|export|import`: operator tools for the event log."""

from __future__ import annotations

import argparse
import json
import threading
import uuid
from functools import partial
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from adapters.backup import BackupError, StoreNotEmpty, export_log, import_log
from adapters.kafka import group_offsets, high_watermarks, read_topic
from adapters.loginspect import UnknownAggregate, show, stats, tail
from adapters.verify import ProjectionCheck, verify
from infra.cli_support import CliError, Commands, command, container, stop_on_signals
from infra.progress import ProgressBar
from infra.projections_wiring import projection_names, verify_projection
from infra.wiring import Container


def register(log_group: Commands) -> None:
    """Add the log commands to the `cartolog log` group."""
    command(log_group, "tail", cmd_tail, "print events as they are recorded", _tail_options)
    command(log_group, "show", cmd_show, "one aggregate's history, or its state at a version",
            _show_options)
    command(log_group, "stats", cmd_stats,
            "counts by type and tenant, store head, relay position, topic ends, group lag",
            _json_option)
    command(log_group, "export", cmd_export,
            "write a portable backup of the whole log and its blobs (FILE.gz compresses)",
            lambda p: p.add_argument("file", type=Path, metavar="FILE"))
    command(log_group, "verify", cmd_verify,
            "compare the store, the events topic and the projections; non-zero on any "
            "discrepancy", _json_option)
    command(log_group, "import", cmd_import,
            "restore a backup into an empty store (verifies the whole file first)",
            lambda p: p.add_argument("file", type=Path, metavar="FILE"))


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _tail_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--lines", type=int, default=20, help="events to show first")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    parser.add_argument("--tenant", help="only this tenant's events")
    parser.add_argument("--type", dest="event_type",
                        help="only this type, e.g. Scenario.LinkClosed or LinkClosed")
    _json_option(parser)


def _show_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("aggregate_id", help="UUID of the aggregate")
    parser.add_argument("--version", type=int, help="state as it was at this version")
    _json_option(parser)


def cmd_tail(args: argparse.Namespace) -> int:
    """`cartolog log tail`."""
    stopping = threading.Event()
    with container() as services, stop_on_signals(stopping.set):
        follow = stopping if args.follow else None
        for document in tail(services.reader(), services.app, args.lines, args.tenant,
                             args.event_type, follow):
            print(json.dumps(document, default=str) if args.json else _line(document),
                  flush=True)
    return 0


def _line(document: dict[str, Any]) -> str:
    payload = json.dumps(document["payload"], default=str, separators=(",", ":"))
    return (f"{document['position']:>8} {document['occurred_at'][:23]} "
            f"{document['tenant_id'] or '-':<12} {document['type']:<32} "
            f"{document['aggregate_id']} v{document['aggregate_version']} "
            f"by {document['actor']} {payload[:200]}")


def cmd_show(args: argparse.Namespace) -> int:
    """`cartolog log show AGGREGATE_ID [--version N]`."""
    try:
        aggregate_id = uuid.UUID(args.aggregate_id)
    except ValueError:
        raise CliError(f"{args.aggregate_id!r} is not a UUID") from None
    with container() as services:
        try:
            shown = show(services.app, aggregate_id, args.version)
        except UnknownAggregate as error:
            raise CliError(str(error)) from None
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    print(f"{shown['type']} {shown['aggregate_id']} at version {shown['version']}")
    for event in shown["history"]:
        print(f"  v{event['aggregate_version']:<4} {event['occurred_at'][:23]} "
              f"{event['type']:<32} by {event['actor']}")
    print("state:")
    print(json.dumps(shown["state"], indent=2))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """`cartolog log stats`."""
    with container() as services:
        report = stats(services.engine)
        report["topics"], report["consumer_groups"] = _broker_stats(services)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"events {report['events']}  store head {report['store_head']}")
    for relay in report["relays"]:
        print(f"relay {relay['name']}: position {relay['position']} ({relay['behind']} behind)")
    for title in ("by_type", "by_tenant"):
        print(title.replace("_", " ") + ":")
        for name, count in report[title].items():
            print(f"  {name:<40} {count}")
    if "error" in report["topics"]:
        print(f"broker: {report['topics']['error']}")
    for topic, ends in report["topics"].items():
        if topic != "error":
            print(f"topic {topic}: end offsets {ends}")
    for group, lag in report["consumer_groups"].items():
        print(f"group {group}: lag {lag}")
    return 0


def _broker_stats(services: Container) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        bootstrap = services.bootstrap_servers
    except RuntimeError as error:
        return {"error": str(error)}, {}
    try:
        settings = services.settings
        topics = {t: high_watermarks(bootstrap, t) for t in (
            settings.events_topic, settings.jobs_topic, settings.results_topic)}
        lag: dict[str, Any] = {}
        for group, committed in group_offsets(bootstrap).items():
            lag[group] = sum(max(0, topics[t].get(p, 0) - offset)
                             for (t, p), offset in committed.items() if t in topics)
        return topics, lag
    except KafkaError as error:
        return {"error": f"broker: {error}"}, {}


def cmd_verify(args: argparse.Namespace) -> int:
    """`cartolog log verify`: prints every discrepancy, exits 1 if there is any."""
    with container() as services:
        records = read_topic(services.bootstrap_servers, services.settings.events_topic)
        problems = verify(services.reader(), services.app.mapper, records,
                          projection_checks(services))
    if args.json:
        print(json.dumps({"consistent": not problems, "problems": problems}, indent=2))
    else:
        for problem in problems:
            print(problem)
        print("consistent" if not problems else f"{len(problems)} discrepancies")
    return 1 if problems else 0


def projection_checks(services: Container) -> list[ProjectionCheck]:
    """Each projection against a fresh replay of the store (positions behind, rows that differ)."""
    return [partial(verify_projection, services, name) for name in projection_names()]


def cmd_export(args: argparse.Namespace) -> int:
    """`cartolog log export FILE`."""
    with container() as services:
        events, blobs = export_log(services.engine, args.file, ProgressBar("export"))
    print(f"exported {events} events and {blobs} blobs to {args.file}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """`cartolog log import FILE`."""
    if not args.file.is_file():
        raise CliError(f"{args.file}: no such file")
    with container() as services:
        try:
            events, blobs = import_log(services.engine, args.file, ProgressBar("import"))
        except (BackupError, StoreNotEmpty) as error:
            raise CliError(f"import refused: {error}") from None
    print(f"imported {events} events and {blobs} blobs from {args.file}")
    return 0
