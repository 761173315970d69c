"""Events appended per second through the domain vs raw single-row INSERT+COMMIT.

Both sides write to the same database in the same run: the domain side through
`Cartolog.edit_scenario` (load from cache, validate, one event, save through the
group-commit recorder), the raw side with psycopg2 `INSERT` + `COMMIT` of rows of the
same size into a table shaped like the event table. Serial (1 writer) and concurrent
(16 writer threads, each on its own scenario / connection). Each side runs RUNS times;
medians are reported.

    .venv/bin/python -m bench.append [--quick]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from collections.abc import Callable

import psycopg2
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.common import bench_database, figure, median_of, report
from domain.edits import SetZoneAttributes
from domain.values import Actor, Link, Network, Node, Zone
from infra.settings import Settings
from infra.wiring import Container, build

ME = Actor("bench")
WRITERS = 16


def network() -> Network:
    nodes = tuple(Node(i, 0.001 * i, 0.0) for i in range(1, 5))
    links = tuple(Link(f"l{i}", i, i + 1, 1000.0, 1.0, 1.0) for i in range(1, 4))
    return Network(nodes, links, (Zone(1, 1, 10.0, 5.0), Zone(2, 4, 5.0, 10.0)))


def run_threads(count: int, work: Callable[[int], None]) -> float:
    """Wall time of `count` threads each running work(index), started together."""
    barrier = threading.Barrier(count + 1)

    def body(index: int) -> None:
        barrier.wait()
        work(index)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


class DomainSide:
    def __init__(self, container: Container) -> None:
        self.app = container.app
        self.app.register_tenant("bench", ME)
        self.dataset = self.app.import_dataset("bench", "tiny", network(), ME)
        self.versions: dict[uuid.UUID, int] = {}

    def scenario(self) -> uuid.UUID:
        scenario_id = self.app.create_scenario("bench", self.dataset, "s", ME)
        self.versions[scenario_id] = 1
        self.app.get_scenario("bench", scenario_id)  # warm the cache
        return scenario_id

    def append(self, scenario_id: uuid.UUID, count: int) -> None:
        version = self.versions[scenario_id]
        for i in range(count):
            version = self.app.edit_scenario("bench", scenario_id, version,
                                             [SetZoneAttributes(1, population=float(i))], ME)
        self.versions[scenario_id] = version

    def rate(self, writers: int, per_writer: int) -> float:
        ids = [self.scenario() for _ in range(writers)]
        elapsed = run_threads(writers, lambda i: self.append(ids[i], per_writer))
        return writers * per_writer / elapsed


class RawSide:
    def __init__(self, dsn: str, row_bytes: int) -> None:
        self.dsn = dsn
        self.state = os.urandom(row_bytes)
        with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, "
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                "topic text NOT NULL, state bytea NOT NULL, "
                "UNIQUE (originator_id, originator_version))")

    def append(self, count: int) -> None:
        connection = psycopg2.connect(self.dsn)
        aggregate = str(uuid.uuid4())
        with connection.cursor() as cursor:
            for version in range(1, count + 1):
                cursor.execute(
                    "INSERT INTO bench_raw (originator_id, originator_version, topic, state) "
                    "VALUES (%s, %s, %s, %s)",
                    (aggregate, version, "domain.scenario:Scenario.ZoneAttributesSet",
                     psycopg2.Binary(self.state)))
                connection.commit()
        connection.close()

    def rate(self, writers: int, per_writer: int) -> float:
        elapsed = run_threads(writers, lambda _i: self.append(per_writer))
        return writers * per_writer / elapsed


def mean_event_bytes(container: Container) -> int:
    with container.engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT avg(octet_length(state)) FROM cartolog_events "
            "WHERE topic LIKE '%ZoneAttributesSet'")).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median reported)")
    args = parser.parse_args()
    serial_n, concurrent_n = (500, 100) if args.quick else (2000, 300)
    with bench_database("cartolog_bench_append") as url:
        container = build(Settings(database_url=url))
        domain = DomainSide(container)
        domain.rate(1, 200)  # warm-up
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        raw = RawSide(dsn, mean_event_bytes(container))
        raw.rate(1, 200)
        serial = median_of(args.runs, lambda: domain.rate(1, serial_n))
        serial_raw = median_of(args.runs, lambda: raw.rate(1, serial_n))
        many = median_of(args.runs, lambda: domain.rate(WRITERS, concurrent_n))
        many_raw = median_of(args.runs, lambda: raw.rate(WRITERS, concurrent_n))
        row_bytes = len(raw.state)
        container.close()
    report("append", [
        figure("serial", serial, "events/s", "raw INSERT+COMMIT", serial_raw),
        figure(f"concurrent_{WRITERS}", many, "events/s",
               f"raw INSERT+COMMIT, {WRITERS} connections", many_raw),
    ], runs=args.runs, event_bytes=row_bytes, events_per_run={"serial": serial_n,
                                                              "concurrent": WRITERS * concurrent_n})


if __name__ == "__main__":
    main()
