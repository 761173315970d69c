"""Replay throughput of the read-model projection into PostGIS, next to two baselines.

The log: simulation runs, each Requested → Started → Completed (two indicators), so every
event changes a row and the read model ends with one `simulation_runs` row and two
`indicators` rows per run. All three sides run in the same process, on the same database,
against the same broker (the bundled one, started here, unless KAFKA_BOOTSTRAP_SERVERS is
set):

- **replay**: `cartolog projections rebuild read_model` as the command does it — fresh
  tables, every record of the topic from offset zero applied in batched transactions with
  tracking and de-duplication, then the swap. Rate = events / wall time.
- **apply**: the replay's write path alone, on records already fetched from the topic
  (decode, de-duplicate, project, write rows and tracking, 20,000 events per
  transaction): what the replay costs beyond the Kafka client's own fetch.
- **one transaction per event**: the same projection and runner, one transaction (rows +
  tracking) per event, like the library's ProjectionRunner. Measured on the first
  `--per-event` events of the topic (it is slow), rate = those events / time.
- **raw COPY**: the final rows of the replay (what those events amount to), COPYed in one
  transaction into fresh tables with the same indexes. Rate = events / COPY time.

RUNS runs per side (default 3); medians are reported.

    .venv/bin/python -m bench.replay [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
import uuid

from kafka import TopicPartition

from adapters.projector import Rebuild, Record, make_consumer, transactional
from adapters.relay import republish
from bench.common import bench_database, figure, median_of, report
from domain.simulation import SimulationRun
from domain.values import Actor
from infra import projections_wiring as wiring
from infra.broker import LocalBroker
from infra.settings import Settings
from infra.wiring import Container, build
from projections.read_model import ReadModel

ME = Actor("bench")
TABLES = ("simulation_runs", "indicators")


def preload(container: Container, runs: int) -> int:
    """Store `runs` runs of three events each, in few saves; returns the event count."""
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


def replay_rate(container: Container, events: int) -> float:
    started = time.perf_counter()
    wiring.rebuild(container, ReadModel.name, "kafka")
    return events / (time.perf_counter() - started)


def apply_rate(container: Container, records: list[Record], batch: int) -> float:
    """The replay's write path alone: records already fetched from the topic are decoded,
    de-duplicated, projected and written with their tracking, `batch` per transaction."""
    projection = ReadModel(wiring.context(container))
    job = Rebuild(container.engine, projection, wiring._ddl(projection))
    job.prepare()
    started = time.perf_counter()
    for index in range(0, len(records), batch):
        job.runner.process(records[index:index + batch])
    return len(records) / (time.perf_counter() - started)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15,000 events instead of 90,000")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median reported)")
    parser.add_argument("--per-event", type=int, default=3000,
                        help="events measured for the one-transaction-per-event baseline")
    args = parser.parse_args()
    runs = 5_000 if args.quick else 30_000
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(
            LocalBroker()).bootstrap_servers
        url = stack.enter_context(bench_database("cartolog_bench_replay"))
        settings = Settings(database_url=url, kafka_bootstrap_servers=bootstrap,
                            topic_prefix=f"bench{uuid.uuid4().hex[:8]}")
        container = build(settings)
        stack.callback(container.close)
        container.ensure_topics()
        events = preload(container, runs)
        republish(container.reader(), container.publisher())
        records = first_records(container, events)
        replay = median_of(args.runs, lambda: replay_rate(container, events))
        applied = median_of(args.runs, lambda: apply_rate(container, records, 20_000))
        per_event = median_of(args.runs, lambda: per_event_rate(container, args.per_event))
        raw_copy = median_of(args.runs, lambda: copy_rate(container, events))
    report("replay", [
        figure("replay_vs_one_transaction_per_event", replay, "events/s",
               "same projection, one transaction per event", per_event),
        figure("replay_vs_raw_copy", replay, "events/s",
               "raw COPY of the resulting rows (events / COPY time)", raw_copy),
        figure("apply_vs_raw_copy", applied, "events/s",
               "raw COPY of the resulting rows (events / COPY time)", raw_copy,
               note="records already fetched from the topic; decode, project, write, track"),
    ], runs=args.runs, events=events, per_event_sample=args.per_event,
        rows=f"{runs} simulation_runs + {2 * runs} indicators")


if __name__ == "__main__":
    main()
