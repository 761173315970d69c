"""Relay throughput vs a raw kafka-python producer sending the same envelopes.

Both sides run in the same process against the same broker (the bundled one, started
here, unless KAFKA_BOOTSTRAP_SERVERS is set), each into a fresh topic, with the same
producer settings (idempotent, acks=all). The relay side is the real `Relay` loop: read
the notification log from PostgreSQL, build envelopes, publish, wait for the broker's
acknowledgement, record its position. The raw side only sends pre-built envelopes and
flushes. RUNS runs per side; medians are reported.

    .venv/bin/python -m bench.relay [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
import uuid

from adapters.envelope import message
from adapters.kafka import delete_topics, ensure_topics, make_producer
from adapters.relay import PositionStore
from bench.common import bench_database, figure, median_of, report
from domain.scenario import Scenario
from domain.values import Actor
from infra.broker import LocalBroker
from infra.settings import Settings
from infra.wiring import Container, build

ME = Actor("bench")


def preload(container: Container, events: int, per_aggregate: int = 500) -> None:
    """Store `events` events quickly: few saves of many events each."""
    container.app.register_tenant("bench", ME)
    for _ in range(events // per_aggregate):
        scenario = Scenario.create(uuid.uuid4(), "bench", "s", uuid.uuid4(), "0" * 64, ME)
        for i in range(per_aggregate - 1):
            scenario._emit(Scenario.ZoneAttributesSet, ME, zone_id=i % 50,
                           population=float(i), jobs=None)
        container.app.save(scenario)


def relay_rate(container: Container) -> float:
    settings = container.settings.model_copy(
        update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}"})
    run = build(settings)
    run.ensure_topics()
    relay = run.relay()
    positions = PositionStore(run.engine, f"relay:{settings.events_topic}")
    head = run.reader().head()
    thread = threading.Thread(target=relay.run)
    started = time.perf_counter()
    thread.start()
    while positions.load() < head:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    relay.stop()
    thread.join()
    delete_topics(run.bootstrap_servers, [settings.events_topic])
    run.close()
    return head / elapsed


def raw_rate(container: Container, messages: list[tuple[bytes, bytes]]) -> float:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    ensure_topics(container.bootstrap_servers, {topic: container.settings.events_partitions})
    producer = make_producer(container.bootstrap_servers)
    started = time.perf_counter()
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    delete_topics(container.bootstrap_servers, [topic])
    return len(messages) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 events instead of 50,000")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median reported)")
    args = parser.parse_args()
    events = 10_000 if args.quick else 50_000
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(
            LocalBroker()).bootstrap_servers
        url = stack.enter_context(bench_database("cartolog_bench_relay"))
        container = build(Settings(database_url=url, kafka_bootstrap_servers=bootstrap))
        stack.callback(container.close)
        preload(container, events)
        notifications = container.reader().after(0, events + 10)
        messages = [message(n, container.app.mapper) for n in notifications]
        relay = median_of(args.runs, lambda: relay_rate(container))
        raw = median_of(args.runs, lambda: raw_rate(container, messages))
        mean_bytes = sum(len(v) for _, v in messages) / len(messages)
    report("relay", [
        figure("relay", relay, "events/s", "raw kafka-python producer, same envelopes", raw),
    ], runs=args.runs, events=len(messages), mean_envelope_bytes=round(mean_bytes))


if __name__ == "__main__":
    main()
