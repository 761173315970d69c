"""Replay throughput of the read-model projection into PostGIS, next to two baselines.

Two logs, each in a database and topics of its own:

- **mixed** (the headline): what tenants do. Three cities each import Sioux Falls, create a
  baseline and fork variants of earlier scenarios (forks inherit edits), edit each scenario
  (link capacities, closures, zone attributes, demand parameters) and run each a few times;
  runs start, some fail an attempt and retry, and complete with a result document (flows on
  the 76 links, trips and accessibility of the 24 zones) and eight indicators.
- **minimal**: only simulation runs, each Requested → Started → Completed with two
  indicators and no result document: one small row per event, the least work per event a
  log can ask for, so the fixed cost of each event shows in full.

For each log, all sides run in the same process, on the same database, against the same
broker (the bundled one, started here, unless KAFKA_BOOTSTRAP_SERVERS is set):

- **replay**: `cartolog projections rebuild read_model` as the command does it by default
  (from the store, the system of record): fresh tables, every stored event applied in
  batched transactions, pipelined with their writes, then the swap.
  Rate = events / wall time.
- **replay from the topic**: the same with `--source kafka`: every record of
  `cartolog.events` from offset zero, with per-partition tracking and de-duplication.
- **one transaction per event**: the same projection and runner, one transaction (rows +
  tracking) per event, like the library's ProjectionRunner. Measured on the first
  `--per-event` events of the topic (it is slow), rate = those events / time.
- **raw COPY**: the final rows of the replay (what those events amount to), COPYed in one
  transaction into fresh tables with the same indexes. Rate = events / COPY time.

RUNS runs per side (default 3), the sides interleaved; medians are reported.

    .venv/bin/python -m bench.replay [--quick] [--runs N] [--workload mixed|minimal|both]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import TopicPartition
from sqlalchemy import text

from adapters.projector.base import Record, transactional
from adapters.projector.consumer import make_consumer
from adapters.projector.rebuild import Rebuild
from adapters.relay import republish
from bench.common import bench_database, figure, report
from domain.edits import ChangeDemandParameters, CloseLink, ModifyLink, SetZoneAttributes
from domain.simulation import SimulationRun
from domain.values import Actor
from infra import projections_wiring as wiring
from infra.broker import LocalBroker
from infra.settings import Settings
from infra.wiring import Container, build
from projections.read_model import ReadModel
from simulation_worker.tntp_dataset import dataset_from_tntp_folder

ME = Actor("bench")
REPO = Path(__file__).resolve().parents[1]
TABLES = tuple(spec.name for spec in ReadModel.tables)
SIOUX_FALLS = REPO / "infra" / "demo_data" / "SiouxFalls"
INDICATORS = ("vehicle_hours", "vehicle_km", "mean_speed_kmh", "share_vkm_over_90pct_vc",
              "total_trips", "mean_trip_minutes", "co2_tonnes", "relative_gap")


def mixed_log(container: Container, tenants: int, scenarios: int, runs: int) -> int:
    """The mixed log (see the module docstring); returns the event count."""
    app, rng = container.app, random.Random(7)
    network = dataset_from_tntp_folder(SIOUX_FALLS)
    links, zones = [k.id for k in network.links], [z.id for z in network.zones]
    for city in range(tenants):
        tenant = f"city{city}"
        app.register_tenant(tenant, ME)
        dataset = app.import_dataset(tenant, "Sioux Falls", network, ME, source_format="tntp")
        made: list[uuid.UUID] = []
        for index in range(scenarios):
            scenario = (app.create_scenario(tenant, dataset, "Baseline", ME) if not made else
                        app.fork_scenario(tenant, rng.choice(made), f"Variant {index}", ME))
            made.append(scenario)
            state = app.get_scenario(tenant, scenario)
            version, open_links = state.version, [k for k in links if k not in state.closed_links]
            chosen = rng.sample(open_links, 8)
            edits: list[Any] = [ModifyLink(k, capacity=rng.uniform(2000, 30000))
                                for k in chosen[:6]]
            edits += [CloseLink(k) for k in chosen[6:]]
            edits += [SetZoneAttributes(z, population=rng.uniform(1e3, 5e4),
                                        jobs=rng.uniform(1e3, 3e4)) for z in rng.sample(zones, 3)]
            edits.append(ChangeDemandParameters(trip_rate=rng.uniform(0.5, 2.0),
                                                deterrence="power"))
            version = app.edit_scenario(tenant, scenario, version, edits, ME)
            batch = []
            for attempt_fails in [rng.random() < 0.2 for _ in range(runs)]:
                run = SimulationRun.request(uuid.uuid4(), tenant, scenario, version, "builtin",
                                            {"gap": 1e-4, "feedback": False}, ME)
                run.start(1, "worker-1", ME)
                attempt = 1
                if attempt_fails:
                    run.fail_attempt(1, "diverged", "Traceback (most recent call last): ...", ME)
                    run.start(2, "worker-2", ME)
                    attempt = 2
                document = {
                    "links": [{"id": k, "flow": rng.uniform(0, 2e4), "volume_capacity":
                               rng.uniform(0, 1.5), "time": rng.uniform(1, 20)} for k in links],
                    "zones": [{"id": z, "trips_from": rng.uniform(0, 3e4),
                               "jobs_within_threshold": rng.uniform(0, 1e5),
                               "logsum_accessibility": rng.uniform(0, 12)} for z in zones]}
                sha = container.blobs.put(tenant, json.dumps(document).encode())
                run.complete(attempt, sha, {n: rng.uniform(0, 1e5) for n in INDICATORS},
                             rng.uniform(0.2, 3.0), ME)
                batch.append(run)
            app.save(*batch)
    return container.reader().head()


def preload(container: Container, runs: int) -> int:
    """The minimal log: `runs` runs of three events each, in few saves; the event count."""
    container.app.register_tenant("bench", ME)
    scenario = uuid.uuid4()
    batch = []
    for i in range(runs):
        run = SimulationRun.request(uuid.uuid4(), "bench", scenario, 1, "builtin",
                                    {"gap": 1e-4}, ME)
        run.start(1, "worker-1", ME)
        run.complete(1, "0" * 64, {"vehicle_hours": float(i), "vehicle_km": 2.0 * i}, 1.5, ME)
        batch.append(run)
        if len(batch) == 500:
            container.app.save(*batch)
            batch = []
    if batch:
        container.app.save(*batch)
    return container.reader().head()


def replay_rate(container: Container, events: int, source: str = "auto") -> float:
    started = time.perf_counter()
    _applied, used = wiring.rebuild(container, ReadModel.name, source)
    if source != "auto" and used != source:
        raise RuntimeError(f"replayed from {used}, not {source}")
    return events / (time.perf_counter() - started)


def per_event_rate(container: Container, limit: int) -> float:
    """One transaction per event, through the same runner, into a rebuild schema."""
    projection = ReadModel(wiring.context(container))
    job = Rebuild(container.engine, projection, wiring._ddl(projection))
    job.prepare()
    records = first_records(container, limit)
    started = time.perf_counter()
    for record in records:
        job.runner.process([record])
    return len(records) / (time.perf_counter() - started)


def first_records(container: Container, limit: int) -> list[Record]:
    topic = container.settings.events_topic
    consumer = make_consumer(container.bootstrap_servers, None)
    with contextlib.closing(consumer):
        partitions = sorted(consumer.partitions_for_topic(topic) or set())
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        found: list[Record] = []
        while len(found) < limit:
            for tp, batch in consumer.poll(timeout_ms=500, max_records=limit).items():
                found += [Record(tp.topic, tp.partition, r.offset, r.value) for r in batch]
    return found[:limit]


def copy_rate(container: Container, events: int) -> float:
    """COPY the final rows into fresh tables with the same definition and indexes."""
    schema = f"copy_{uuid.uuid4().hex[:8]}"
    dumps = {}
    connection = transactional(container.engine)
    try:
        with connection.cursor() as cursor:
            for table in TABLES:
                buffer = io.StringIO()
                cursor.copy_expert(f"COPY {table} TO STDOUT", buffer)
                dumps[table] = buffer.getvalue()
            cursor.execute(f'CREATE SCHEMA "{schema}"')
            for table in TABLES:
                for statement in wiring.table_ddl_for(table, schema):
                    cursor.execute(statement)
        connection.commit()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for table in TABLES:
                cursor.copy_expert(f'COPY "{schema}".{table} FROM STDIN',
                                   io.StringIO(dumps[table]))
        connection.commit()
        elapsed = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')
        connection.commit()
    finally:
        connection.close()
    return events / elapsed


def measure(bootstrap: str, name: str, load: Callable[[Container], int], runs: int,
            per_event_sample: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every side on one log, in a database and topics of its own."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(bench_database(f"cartolog_bench_replay_{name}"))
        settings = Settings(database_url=url, kafka_bootstrap_servers=bootstrap,
                            topic_prefix=f"bench{uuid.uuid4().hex[:8]}")
        container = build(settings)
        stack.callback(container.close)
        container.ensure_topics()
        events = load(container)
        republish(container.reader(), container.publisher())
        sample = min(per_event_sample, events)
        sides: dict[str, list[float]] = {"replay": [], "topic": [], "per_event": [], "copy": []}
        for _ in range(runs):  # interleaved, so drift (autovacuum, caches) hits every side
            sides["replay"].append(replay_rate(container, events))
            sides["topic"].append(replay_rate(container, events, "kafka"))
            sides["per_event"].append(per_event_rate(container, sample))
            sides["copy"].append(copy_rate(container, events))
        replay, from_topic, per_event, raw_copy = (
            statistics.median(sides[k]) for k in ("replay", "topic", "per_event", "copy"))
        rows = row_counts(container)
    copy_note = "raw COPY of the resulting rows (events / COPY time)"
    figures = [
        figure(f"{name}: replay_vs_raw_copy", replay, "events/s", copy_note, raw_copy),
        figure(f"{name}: replay_vs_one_transaction_per_event", replay, "events/s",
               "same projection, one transaction per event", per_event,
               sample=f"first {sample} events"),
        figure(f"{name}: replay_from_topic_vs_raw_copy", from_topic, "events/s", copy_note,
               raw_copy, note="--source kafka: the events topic from offset zero"),
    ]
    return figures, {"events": events, "rows": sum(rows.values()), "tables": rows}


def row_counts(container: Container) -> dict[str, int]:
    with container.engine.connect() as connection:
        found = {t: int(connection.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one())
                 for t in TABLES}
    return {t: n for t, n in found.items() if n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller logs")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median reported)")
    parser.add_argument("--per-event", type=int, default=3000,
                        help="events measured for the one-transaction-per-event baseline")
    parser.add_argument("--workload", choices=("mixed", "minimal", "both"), default="both")
    args = parser.parse_args()
    loads: dict[str, Callable[[Container], int]] = {
        "mixed": lambda c: mixed_log(c, 3, 40 if args.quick else 200, 3),
        "minimal": lambda c: preload(c, 5_000 if args.quick else 30_000),
    }
    chosen = list(loads) if args.workload == "both" else [args.workload]
    figures: list[dict[str, Any]] = []
    logs: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(
            LocalBroker()).bootstrap_servers
        for name in chosen:
            found, logs[name] = measure(bootstrap, name, loads[name], args.runs,
                                        args.per_event)
            figures += found
    report("replay", figures, runs=args.runs, logs=logs)


if __name__ == "__main__":
    main()
