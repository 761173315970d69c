"""Simulation workers: platform overhead per job, and throughput with 1 and 2 workers.

Starts its own database and broker (unless KAFKA_BOOTSTRAP_SERVERS is set), then the real
pipeline: relay, dispatcher and recorder as threads of this process, workers as
`cartolog worker` processes. Models are external commands (small Python scripts), so their
cost is known exactly.

1. Overhead: one worker; jobs run one after another on a model that sleeps COST seconds.
   Overhead = (Completed recorded - run requested) - COST: relay, dispatch, Kafka hops, lease,
   model process start, result blob, result message, recorder. RUNS jobs; median reported,
   compared with COST (target: at most 2% of a 15-second job).
2. Throughput: JOBS CPU-bound jobs (a busy loop of CPU_S seconds) with 1 worker, then with 2
   workers; jobs per second, 2 workers compared with 1 (target: at least 1.8x). Each side
   is measured REPEATS times; medians reported.

    .venv/bin/python -m bench.workers [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import bench_database, figure, report
from domain.simulation import COMPLETED
from domain.values import Actor, Link, Network, Node, Zone
from infra import jobs_wiring
from infra.broker import LocalBroker
from infra.settings import JobSettings, Settings
from infra.wiring import build

ME = Actor("bench")
REPO = Path(__file__).resolve().parents[1]
SLEEPS = """
import json, sys, time
json.load(sys.stdin)
time.sleep(float(sys.argv[1]))
print(json.dumps({"schema": "cartolog.model-output/1", "links": [], "indicators": {}}))
"""
SPINS = """
import json, sys, time
json.load(sys.stdin)
end = time.process_time() + float(sys.argv[1])
total = 0
while time.process_time() < end:  # arithmetic, reading the CPU clock about once a ms
    for i in range(20_000):
        total += i * i
print(json.dumps({"schema": "cartolog.model-output/1", "links": [], "indicators": {}}))
"""


def tiny_network() -> Network:
    nodes = (Node(1, 0.0, 0.0), Node(2, 0.01, 0.0), Node(3, 0.01, 0.01))
    links = (Link("a", 1, 2, 1000.0, 1.0, 1.0), Link("b", 2, 3, 1000.0, 1.0, 1.0))
    return Network(nodes, links, (Zone(1, 1, 100.0, 10.0), Zone(2, 3, 20.0, 80.0)))


class Bench:
    """One pipeline (topics, groups) per measurement."""

    def __init__(self, base: Settings, command: str, workers: int) -> None:
        settings = base.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}"})
        self.container = build(settings)
        self.jobs = JobSettings(external_model_command=command, progress_every_s=60)
        self.command = command
        self.workers = workers
        self.loops: list[tuple[Any, threading.Thread]] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    @contextlib.contextmanager
    def running(self) -> Iterator[Bench]:
        c = self.container
        c.ensure_topics()
        for loop in (c.relay(), jobs_wiring.dispatcher(c, self.jobs), jobs_wiring.recorder(c)):
            thread = threading.Thread(target=loop.run, daemon=True)
            thread.start()
            self.loops.append((loop, thread))
        for _ in range(self.workers):
            self.processes.append(self._worker())
        try:
            self.scenario = self._scenario()
            self.warm_up()
            yield self
        finally:
            self._stop()

    def _worker(self) -> subprocess.Popen[bytes]:
        s = self.container.settings
        env = {**os.environ, "DATABASE_URL": s.database_url,
               "KAFKA_BOOTSTRAP_SERVERS": str(s.kafka_bootstrap_servers),
               "CARTOLOG_TOPIC_PREFIX": s.topic_prefix,
               "CARTOLOG_PROGRESS_EVERY_S": "60",
               "CARTOLOG_EXTERNAL_MODEL_COMMAND": self.command}
        return subprocess.Popen([sys.executable, "-m", "infra.cli", "worker"], cwd=REPO,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _scenario(self) -> uuid.UUID:
        app = self.container.app
        with contextlib.suppress(Exception):
            app.register_tenant("bench", ME)
        dataset = app.import_dataset("bench", "tiny", tiny_network(), ME)
        return app.create_scenario("bench", dataset, "s", ME)

    def warm_up(self) -> None:
        """Every worker has joined the group and run a job."""
        time.sleep(8)  # JoinGroup is held about session_timeout/2 on the bundled broker
        self.wait(self.submit(2 * self.workers), 300)

    def submit(self, count: int) -> list[uuid.UUID]:
        return [self.container.app.request_simulation("bench", self.scenario, "external",
                                                      {"reuse": False}, ME)
                for _ in range(count)]

    def wait(self, run_ids: list[uuid.UUID], timeout: float) -> float:
        """Wait until every run is terminal; returns the last Completed time (epoch seconds).

        Checked with one indexed count query every 0.2 s: rebuilding every pending run from
        the store in a tight loop would steal the CPU the jobs are measured on."""
        deadline = time.monotonic() + timeout
        ids = [str(r) for r in run_ids]
        while self._terminal_count(ids) < len(ids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"runs not finished in {timeout}s")
            time.sleep(0.2)
        runs = [self.container.app.get_run("bench", run_id) for run_id in run_ids]
        for run in runs:
            if run.status != COMPLETED:
                raise RuntimeError(f"run {run.id} ended {run.status}: {run.last_error}")
        return max(run.modified_on.timestamp() for run in runs)

    def _terminal_count(self, ids: list[str]) -> int:
        with self.container.engine.connect() as connection:
            return int(connection.execute(text(
                "SELECT count(DISTINCT originator_id) FROM cartolog_events "
                "WHERE originator_id = ANY(CAST(:ids AS uuid[])) AND ("
                "topic LIKE '%SimulationRun.Completed' OR topic LIKE '%SimulationRun.DeadLettered'"
                " OR topic LIKE '%SimulationRun.Cancelled')"), {"ids": ids}).scalar_one())

    def overhead(self, cost: float) -> float:
        """Request → Completed (as recorded in the store) minus the model's cost."""
        [run_id] = self.submit(1)
        self.wait([run_id], cost + 120)
        run = self.container.app.get_run("bench", run_id)
        return float((run.modified_on - run.created_on).total_seconds()) - cost

    def _stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        for loop, _ in self.loops:
            loop.stop()
        for _, thread in self.loops:
            thread.join(30)
        self.container.close()


def script(folder: Path, name: str, body: str, seconds: float) -> str:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return f"{sys.executable} {path} {seconds}"


def throughput(base: Settings, command: str, workers: int, jobs: int) -> float:
    with Bench(base, command, workers).running() as bench:
        started = time.time()
        finished = bench.wait(bench.submit(jobs), 600)
        return jobs / (finished - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3-second jobs, fewer runs")
    args = parser.parse_args()
    cost, runs = (3.0, 3) if args.quick else (15.0, 5)
    cpu_s, jobs, repeats = (1.0, 6, 1) if args.quick else (2.0, 8, 3)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(bench_database("bench_workers"))
        servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not servers:
            servers = stack.enter_context(LocalBroker()).bootstrap_servers
        base = Settings(database_url=url, kafka_bootstrap_servers=servers)
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sleeps = script(folder, "sleeps", SLEEPS, cost)
        with Bench(base, sleeps, 1).running() as bench:
            overheads = [bench.overhead(cost) for _ in range(runs)]
        spins = script(folder, "spins", SPINS, cpu_s)
        one = statistics.median(throughput(base, spins, 1, jobs) for _ in range(repeats))
        two = statistics.median(throughput(base, spins, 2, jobs) for _ in range(repeats))
    overhead = statistics.median(overheads)
    report("workers", [
        figure("overhead per job", overhead, "s", f"model cost of a {cost:g} s job", cost,
               higher_is_better=False, runs=runs, overheads=[round(o, 3) for o in overheads],
               share=round(overhead / cost, 4)),
        figure("throughput, 2 workers", two, "jobs/s", "1 worker", one, runs=repeats,
               jobs=jobs, cpu_s_per_job=cpu_s),
    ])


if __name__ == "__main__":
    main()
