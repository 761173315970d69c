"""Multi-tenant soak against `cartolog up --workers 2`, with a SIGKILL every minute.

Each tenant (Sioux Falls, its own base scenario) loops over: edit a link, fork, request a
simulation and wait until it is completed and projected, read tiles of the scenario and of
the run, compare with its previous run, then think for a moment. Every `--kill-every`
seconds one child process of `up` is SIGKILLed, alternately a worker and the projector
(`up` starts them again). One run per worker warms the model up first, uncounted. At the
end every run must be completed exactly once, and `cartolog log verify` must be clean.

Loopback only: a broker and a database of its own, `up` on 127.0.0.1:8640. Baselines, from
the same run: `GET /healthz` on the same server for API latency; the worker's own time for
each run (`duration_s`) for the end-to-end latency. `--quick`: 6 tenants for 90 s.

Beside the figures it reports where each run's time went (`breakdown`: the stages of
docs/jobs.md, "Where the time goes"), how the workers spent theirs (`workers_cycle`), the CPU
seconds of each part of the stack and of everything else on the machine (`cpu`, with the
load average), and what is known of any run that did not complete (`unfinished_runs`). Every
run's stamps go to `.cartolog/soak-traces.json`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url, text

from adapters.kafka import read_topic
from api.tntp_import import network_from_tntp_folder
from bench.common import bench_database, figure, report
from domain.values import Actor
from infra.broker import LocalBroker
from infra.demo import DEMO_DATA
from infra.settings import Settings
from infra.supervisor import cartolog_command
from infra.wiring import Container, build

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "soak.localhost"
ACTOR = Actor("bench:soak")
RUN_TIMEOUT_S = 180.0
THINK_S = (1.0, 3.0)


class Recorder:
    """Thread-safe latencies per endpoint family, runs requested, end-to-end times."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.runs: list[tuple[str, uuid.UUID]] = []
        self.e2e: list[float] = []
        self.completed: list[float] = []
        self.compute: list[float] = []
        # run id → epoch seconds the client saw: requested, accepted, completed, projected
        self.client: dict[uuid.UUID, dict[str, float]] = {}

    def call(self, family: str, send: Callable[[], httpx.Response]) -> httpx.Response:
        started = time.perf_counter()
        response = send()
        with self.lock:
            self.latency[family].append((time.perf_counter() - started) * 1000)
            if response.status_code >= 500:
                self.errors[family] += 1
        return response


class Tenant:
    """One tenant's loop over the API."""

    def __init__(self, name: str, base: str, token: str, scenario: uuid.UUID,
                 link_ids: list[str], stats: Recorder, deadline: float) -> None:
        self.name, self.scenario, self.link_ids = name, scenario, link_ids
        self.stats, self.deadline = stats, deadline
        self.http = httpx.Client(base_url=base, timeout=60.0, headers={
            "Authorization": f"Bearer {token}", "Host": f"{name}.{DOMAIN}"})
        self.version = 1
        self.previous_run: str | None = None
        self.rng = random.Random(name)

    def run(self) -> None:
        for step in itertools.count():
            if time.monotonic() > self.deadline or step > 10_000:
                return
            self.loop(step)
            time.sleep(self.rng.uniform(*THINK_S))

    def loop(self, step: int) -> None:
        call, s = self.stats.call, self.scenario
        call("healthz", lambda: self.http.get("/healthz"))
        link = self.rng.choice(self.link_ids)
        body = {"edits": [{"op": "modify_link", "link_id": link,
                           "capacity": 1000.0 + self.rng.random() * 20_000}]}
        edited = call("edit", lambda: self.http.post(
            f"/v1/scenarios/{s}/edits", json=body, headers={"If-Match": f'"{self.version}"'}))
        if edited.status_code == 200:
            self.version = edited.json()["version"]
        call("fork", lambda: self.http.post("/v1/scenarios", json={
            "name": f"fork {step}", "fork_of": str(s)}))
        run_id = self.simulate()
        call("tiles", lambda: self.http.get("/v1/tiles/links/0/0/0.mvt",
                                            params={"scenario": str(s)}))
        if run_id is None:
            return
        call("tiles", lambda: self.http.get("/v1/tiles/link_results/0/0/0.mvt",
                                            params={"run": run_id}))
        if self.previous_run is not None:
            previous = self.previous_run
            call("compare", lambda: self.http.get("/v1/compare",
                                                  params={"a": previous, "b": run_id}))
        self.previous_run = run_id

    def simulate(self) -> str | None:
        requested, requested_epoch = time.perf_counter(), time.time()
        response = self.stats.call("simulate", lambda: self.http.post(
            f"/v1/scenarios/{self.scenario}/simulations",
            json={"model": "builtin", "parameters": {"reuse": False}}))
        if response.status_code != 202:
            return None
        run_id = response.json()["id"]
        seen = {"requested": requested_epoch, "accepted": time.time()}
        with self.stats.lock:
            self.stats.runs.append((self.name, uuid.UUID(run_id)))
            self.stats.client[uuid.UUID(run_id)] = seen
        completed_at: float | None = None
        while time.perf_counter() - requested < RUN_TIMEOUT_S:
            state = self.stats.call("status", lambda: self.http.get(
                f"/v1/simulations/{run_id}"))
            body = state.json() if state.status_code == 200 else {}
            if body.get("status") == "completed" and completed_at is None:
                completed_at = time.perf_counter()
                seen["seen_completed"] = time.time()
            if completed_at is not None and body.get("finished_at") is not None:
                seen["seen_projected"] = time.time()
                self._finished(requested, completed_at, body)
                return str(run_id)
            if body.get("status") in ("failed", "cancelled", "dead_lettered"):
                return None
            time.sleep(0.05)
        return None

    def _finished(self, requested: float, completed_at: float, body: dict[str, Any]) -> None:
        with self.stats.lock:
            self.stats.e2e.append(time.perf_counter() - requested)
            self.stats.completed.append(completed_at - requested)
            if body.get("duration_s") is not None:
                self.stats.compute.append(float(body["duration_s"]))


class ProjectionWatch:
    """Notes when each requested run's completion reaches the read model (finished_at set),
    by one query over the runs still pending every `every_s`: the `projected` stage."""

    def __init__(self, container: Container, stats: Recorder, every_s: float = 0.025) -> None:
        self.container, self.stats, self.every_s = container, stats, every_s
        self.projected: dict[uuid.UUID, float] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        query = text("SELECT run_id FROM simulation_runs WHERE finished_at IS NOT NULL "
                     "AND run_id = ANY(:ids)")
        with self.container.engine.connect() as connection:
            while not self.stopping.wait(self.every_s):
                with self.stats.lock:
                    pending = [r for _, r in self.stats.runs if r not in self.projected]
                if not pending:
                    continue
                found = connection.execute(query, {"ids": pending}).scalars().all()
                connection.commit()
                now = time.time()
                for run_id in found:
                    self.projected.setdefault(run_id, now)


# Where a run's end-to-end time goes: (segment, from stage, to stage), in pipeline order.
SEGMENTS = (
    ("api_accept", "requested", "accepted"),
    ("relay_requested", "accepted", "relayed_requested"),
    ("dispatch", "relayed_requested", "queued"),
    ("release_wait", "queued", "released"),
    ("deliver", "released", "received"),
    ("claim_and_start", "received", "started"),
    ("input_and_fork", "started", "child_started"),
    ("child_boot", "child_started", "child_entered"),
    ("model", "child_entered", "computed"),
    ("handoff", "computed", "model_done"),
    ("store_output", "model_done", "result"),
    ("send_result", "result", "result_sent"),
    ("record", "result_sent", "recorded"),
    ("relay_completed", "recorded", "relayed_completed"),
    ("project", "relayed_completed", "projected"),
    ("client_poll", "projected", "seen_projected"),
)


def traces(container: Container, bootstrap: str, stats: Recorder,
           projected: dict[uuid.UUID, float]) -> dict[uuid.UUID, dict[str, float]]:
    """Epoch seconds of every stage of each completed run: the client's own times, the
    store's event times, the records' times on the topics (when the relay and the worker
    sent them), the outbox row of the completing attempt, the worker's stages (kept with
    its result in the lease row) and the projection watch."""
    settings = container.settings
    found = {run_id: dict(seen) for run_id, seen in stats.client.items()}
    for record in read_topic(bootstrap, settings.events_topic):
        event = json.loads(record.value)
        run_id = uuid.UUID(event["aggregate_id"])
        if run_id not in found:
            continue
        stage = {"SimulationRun.Requested": "requested",
                 "SimulationRun.Completed": "completed"}.get(event["type"])
        if stage is not None:
            found[run_id].setdefault("relayed_" + stage, record.timestamp_ms / 1000)
            if stage == "completed":
                found[run_id]["recorded"] = datetime.fromisoformat(
                    event["occurred_at"]).timestamp()
    for record in read_topic(bootstrap, settings.results_topic):
        result = json.loads(record.value)
        run_id = uuid.UUID(result["run_id"])
        if run_id in found and result.get("outcome") == "completed":
            found[run_id].setdefault("result_sent", record.timestamp_ms / 1000)
    query = text(
        "SELECT o.run_id, o.created_at, o.published_at, l.result FROM simulation_job_outbox o "
        "JOIN simulation_job_leases l ON l.run_id = o.run_id AND l.attempt = o.attempt "
        "WHERE o.kind = 'job' AND l.state = 'done' AND l.result->>'outcome' = 'completed'")
    with container.engine.connect() as connection:
        for row in connection.execute(query):
            if row.run_id not in found:
                continue
            stages = found[row.run_id]
            stages.update(queued=row.created_at.timestamp())
            if row.published_at is not None:
                stages.update(released=row.published_at.timestamp())
            stages.update({k: float(v) for k, v in (row.result.get("stages") or {}).items()})
            stages["worker"] = row.result.get("worker") or ""  # type: ignore[assignment]
    for run_id, at in projected.items():
        if run_id in found:
            found[run_id]["projected"] = at
    return found


def breakdown(found: dict[uuid.UUID, dict[str, float]]) -> list[dict[str, Any]]:
    """p50, p99 and mean of each segment over the runs that have both of its stages; the
    shares of the mean end-to-end time."""
    total = [t["seen_projected"] - t["requested"] for t in found.values()
             if "seen_projected" in t]
    mean_total = statistics.fmean(total) if total else 0.0
    rows = []
    for name, start, end in SEGMENTS:
        values = [t[end] - t[start] for t in found.values() if start in t and end in t]
        mean = statistics.fmean(values) if values else 0.0
        rows.append({"segment": name, "from": start, "to": end, "runs": len(values),
                     "p50_s": round(percentile(values, 50), 3),
                     "p99_s": round(percentile(values, 99), 3), "mean_s": round(mean, 3),
                     "share_of_mean": round(mean / mean_total, 3) if mean_total else None})
    return rows


class CpuSampler:
    """CPU seconds used while the soak runs, by part: `up` itself (API, relay, dispatcher,
    recorder), the workers with their model processes, the projector, the broker, the soak's
    own clients, this database's PostgreSQL backends, and everything else on the machine
    (other users' work): read from /proc every `every_s`."""

    def __init__(self, up_pid: int, broker_port: int, database: str,
                 every_s: float = 1.0) -> None:
        self.up_pid, self.broker = up_pid, f"127.0.0.1:{broker_port}".encode()
        self.database = f" {database} ".encode()
        self.every_s = every_s
        self.used: dict[str, float] = defaultdict(float)
        self.last: dict[int, tuple[str, float]] = {}
        self.primed = False
        self.machine_start = self.machine_end = _machine_cpu_s()
        self.started = self.ended = time.monotonic()
        self.load: list[float] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        self._take()
        self.machine_start, self.started = _machine_cpu_s(), time.monotonic()
        while not self.stopping.wait(self.every_s):
            self._take()
        self._take()
        self.machine_end, self.ended = _machine_cpu_s(), time.monotonic()

    def _take(self) -> None:
        parents: dict[int, int] = {}
        seen: dict[int, tuple[bytes, float]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                args = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
            except (OSError, IndexError):
                continue
            pid = int(stat.parent.name)
            parents[pid] = int(fields[1])
            seen[pid] = (b" " + args + b" ", (int(fields[11]) + int(fields[12]))
                         / os.sysconf("SC_CLK_TCK"))
        for pid, (args, cpu) in seen.items():
            part = self._part(pid, args, parents, seen)
            if part is None:
                continue
            previous = self.last.get(pid)
            # A process first seen after the first sample was born during the soak.
            self.used[part] += cpu - (previous[1] if previous else 0.0 if self.primed else cpu)
            self.last[pid] = (part, cpu)
        self.primed = True
        self.load.append(os.getloadavg()[0])

    def _part(self, pid: int, args: bytes, parents: dict[int, int],
              seen: dict[int, tuple[bytes, float]]) -> str | None:
        if pid == os.getpid():
            return "soak_clients"
        if self.broker in args and b"tansu" in args:
            return "broker"
        if args.startswith(b" postgres") and self.database in args:
            return "postgresql"
        child, parent = pid, parents.get(pid)
        while parent is not None and parent != self.up_pid:
            child, parent = parent, parents.get(parent)
        if pid == self.up_pid:
            return "up_api_relay_dispatcher_recorder"
        if parent != self.up_pid:
            return None
        top = seen.get(child, (b"", 0.0))[0]
        return "workers_and_models" if b" worker " in top else \
            "projector" if b" projector " in top else "up_other"

    def report(self) -> dict[str, Any]:
        wall = max(self.ended - self.started, 1e-9)
        machine = self.machine_end - self.machine_start
        ours = sum(self.used.values())
        return {"wall_s": round(wall, 1), "cores": os.cpu_count(),
                "machine_cpu_s": round(machine, 1),
                "by_part_cpu_s": {k: round(v, 1) for k, v in sorted(self.used.items())},
                "others_cpu_s": round(max(0.0, machine - ours), 1),
                "load_average_1m": {"min": round(min(self.load, default=0.0), 2),
                                    "median": round(statistics.median(self.load or [0.0]), 2),
                                    "max": round(max(self.load, default=0.0), 2)}}


def _machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot (/proc/stat, all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def worker_cycles(found: dict[uuid.UUID, dict[str, float]]) -> dict[str, Any]:
    """How each worker spent its time: busy (job received → result sent) and, between a
    result and the next job while that job was already queued, idle (release + delivery)."""
    by_worker: dict[str, list[dict[str, float]]] = defaultdict(list)
    for stages in found.values():
        if "received" in stages and "result_sent" in stages and stages.get("worker"):
            by_worker[str(stages["worker"])].append(stages)
    busy, idle = [], []
    for jobs in by_worker.values():
        jobs.sort(key=lambda t: t["received"])
        busy += [t["result_sent"] - t["received"] for t in jobs]
        idle += [b["received"] - a["result_sent"] for a, b in itertools.pairwise(jobs)
                 if b.get("queued", b["received"]) < a["result_sent"]]
    return {"jobs": len(busy), "busy_p50_s": round(percentile(busy, 50), 3),
            "busy_mean_s": round(statistics.fmean(busy), 3) if busy else 0.0,
            "idle_with_work_waiting_p50_s": round(percentile(idle, 50), 3),
            "idle_with_work_waiting_mean_s": round(statistics.fmean(idle), 3) if idle else 0.0,
            "gaps": len(idle)}


def warm_up(tenants: list[Tenant]) -> None:
    """One run per worker before the clock starts: the model's compiled code is cached on
    disk, so later (and restarted) workers load it instead of compiling."""
    threads = [threading.Thread(target=t.simulate) for t in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def children_of(pid: int, command: str) -> list[int]:
    """Pids of the live child processes of `pid` running `cartolog COMMAND`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            args = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and command.encode() in args:
            found.append(int(stat.parent.name))
    return found


def killer(up: subprocess.Popen[bytes], every_s: float, deadline: float,
           kills: list[dict[str, Any]]) -> None:
    """SIGKILL a worker, then the projector, then a worker... every `every_s` seconds."""
    for target in itertools.cycle(("worker", "projector")):
        if time.monotonic() + every_s > deadline:
            return
        time.sleep(every_s)
        victims = children_of(up.pid, target)
        if victims:
            os.kill(victims[0], signal.SIGKILL)
            kills.append({"process": target, "pid": victims[0], "at_s": round(
                every_s * (len(kills) + 1), 1)})


def setup_tenants(container: Container, count: int) -> list[tuple[str, str, uuid.UUID]]:
    """Register `count` tenants, each with Sioux Falls and a base scenario."""
    network = network_from_tntp_folder(DEMO_DATA)
    tenants = []
    for index in range(count):
        name = f"soak{index:02d}"
        container.app.register_tenant(name, ACTOR)
        dataset = container.app.import_dataset(name, "Sioux Falls", network, ACTOR,
                                               source_format="tntp")
        scenario = container.app.create_scenario(name, dataset, "base", ACTOR)
        tenants.append((name, container.dev_issuer.issue(name, "editor"), scenario))
    return tenants


def wait_ready(base: str, up: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if up.poll() is not None:
            raise RuntimeError(f"cartolog up exited with {up.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("cartolog up not ready")


def tally(container: Container, runs: list[tuple[str, uuid.UUID]]) -> tuple[int, int]:
    """(lost, duplicated): runs not completed, runs completed more than once."""
    lost = duplicated = 0
    for tenant, run_id in runs:
        completions = sum(type(e).__name__ == "Completed"
                          for e in container.app.events.get(run_id))
        if container.app.get_run(tenant, run_id).status != "completed" or completions == 0:
            lost += 1
        duplicated += completions > 1
    return lost, duplicated


def diagnose(container: Container, runs: list[tuple[str, uuid.UUID]]) -> list[dict[str, Any]]:
    """For each run that did not complete: its events, outbox rows, leases and the workers."""
    found = []
    with container.engine.connect() as connection:
        for tenant, run_id in runs:
            if container.app.get_run(tenant, run_id).status == "completed":
                continue
            rows = {name: [{k: str(v) for k, v in row._mapping.items() if k != "value"}
                           for row in connection.execute(text(query), {"run": run_id})]
                    for name, query in (
                        ("outbox", "SELECT * FROM simulation_job_outbox WHERE run_id = :run"),
                        ("leases", "SELECT * FROM simulation_job_leases WHERE run_id = :run"),
                        ("workers", "SELECT * FROM simulation_workers WHERE :run IS NOT NULL"))}
            found.append({"run": str(run_id), "events": [
                (type(e).__name__, str(getattr(e, "timestamp", "")))
                for e in container.app.events.get(run_id)], **rows})
    return found


def drain(container: Container, runs: list[tuple[str, uuid.UUID]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
            not container.app.get_run(t, r).is_terminal for t, r in runs):
        time.sleep(1.0)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def figures(stats: Recorder, lost: int, duplicated: int) -> list[dict[str, Any]]:
    base = stats.latency["healthz"]
    found = []
    for family in ("edit", "fork", "simulate", "status", "tiles", "compare"):
        values = stats.latency[family]
        for q in (50, 99):
            found.append(figure(f"api_{family}_p{q}", percentile(values, q), "ms",
                                f"GET /healthz p{q}, same server", percentile(base, q), False,
                                requests=len(values), server_errors=stats.errors[family]))
    for q in (50, 99):
        found.append(figure(f"e2e_projected_p{q}", percentile(stats.e2e, q), "s",
                            f"worker time per run p{q}", percentile(stats.compute, q), False,
                            target_s=1.5 if q == 50 else None, runs=len(stats.e2e)))
        found.append(figure(f"e2e_completed_p{q}", percentile(stats.completed, q), "s",
                            f"worker time per run p{q}", percentile(stats.compute, q), False))
    found.append(figure("runs_lost", lost, "runs", "required", 0, False))
    found.append(figure("runs_duplicated", duplicated, "runs", "required", 0, False))
    return found


def soak(url: str, broker: LocalBroker, args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"soak{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=url, kafka_bootstrap_servers=broker.bootstrap_servers,
                        topic_prefix=prefix, base_domain=DOMAIN, api_port=args.port)
    env = {**os.environ, "DATABASE_URL": url,
           "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "CARTOLOG_TOPIC_PREFIX": prefix,
           "CARTOLOG_BASE_DOMAIN": DOMAIN, "CARTOLOG_API_HOST": "127.0.0.1",
           "CARTOLOG_API_PORT": str(args.port), "CARTOLOG_FETCH_WAIT_MS": str(args.fetch_wait_ms),
           "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", "/tmp/numba-soak")}
    container = build(settings)
    tenants = setup_tenants(container, args.tenants)
    link_ids = [link.id for link in network_from_tntp_folder(DEMO_DATA).links]
    (REPO / ".cartolog").mkdir(exist_ok=True)
    log = open(REPO / ".cartolog" / "soak-up.log", "wb")  # noqa: SIM115
    up = subprocess.Popen(cartolog_command("up", "--workers", str(args.workers)),
                          cwd=REPO, env=env, stdout=log, stderr=log)
    stats, kills = Recorder(), list[dict[str, Any]]()
    cpu: CpuSampler | None = None
    watch = ProjectionWatch(container, stats)
    try:
        base = f"http://127.0.0.1:{args.port}"
        wait_ready(base, up)
        warm_up([Tenant(name, base, token, scenario, link_ids, Recorder(), 0.0)
                 for name, token, scenario in tenants[:args.workers]])
        watch.thread.start()
        cpu = CpuSampler(up.pid, broker.port, make_url(url).database or "")
        cpu.thread.start()
        deadline = time.monotonic() + args.seconds
        loops = [Tenant(name, base, token, scenario, link_ids, stats, deadline)
                 for name, token, scenario in tenants]
        threads = [threading.Thread(target=t.run) for t in loops]
        threads.append(threading.Thread(target=killer, args=(up, args.kill_every, deadline,
                                                             kills)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu.stopping.set()
        cpu.thread.join()
        drain(container, stats.runs, RUN_TIMEOUT_S)
    finally:
        watch.stopping.set()
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(90)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()
    lost, duplicated = tally(container, stats.runs)
    found = traces(container, broker.bootstrap_servers, stats, watch.projected)
    unfinished = diagnose(container, stats.runs)
    (REPO / ".cartolog" / "soak-traces.json").write_text(json.dumps(
        {str(run_id): stages for run_id, stages in found.items()}))
    container.close()
    verify = subprocess.run(cartolog_command("log", "verify", "--json"), cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    consistent = verify.returncode == 0 and json.loads(verify.stdout or "{}").get("consistent")
    return {"figures": figures(stats, lost, duplicated), "kills": kills,
            "breakdown": breakdown(found), "workers_cycle": worker_cycles(found),
            "unfinished_runs": unfinished,
            "cpu": cpu.report() if cpu else {},
            "requests": sum(len(v) for v in stats.latency.values()),
            "runs_requested": len(stats.runs), "log_verify_clean": bool(consistent),
            "log_verify_problems": verify.stdout[-2000:] if not consistent else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="6 tenants, 90 s, kill every 30 s")
    parser.add_argument("--tenants", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--kill-every", type=float)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8640)
    parser.add_argument("--fetch-wait-ms", type=int, default=250)
    args = parser.parse_args()
    defaults = (6, 90.0, 30.0) if args.quick else (20, 300.0, 60.0)
    args.tenants = args.tenants or defaults[0]
    args.seconds = args.seconds or defaults[1]
    args.kill_every = args.kill_every or defaults[2]
    (REPO / ".cartolog").mkdir(exist_ok=True)
    with bench_database("cartolog_soak") as url, LocalBroker(
            log_file=REPO / ".cartolog" / "soak-broker.log") as broker:
        result = soak(url, broker, args)
    report("soak", result.pop("figures"), tenants=args.tenants, seconds=args.seconds,
           workers=args.workers, runs="one soak; percentiles over every request", **result)


if __name__ == "__main__":
    main()
