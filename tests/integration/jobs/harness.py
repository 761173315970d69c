"""Run the job pipeline against the real PostGIS and broker: threads or real processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from domain.simulation import TERMINAL, SimulationRun
from infra import jobs_wiring
from infra.settings import JobSettings
from infra.wiring import Container
from tests.conftest import REPO
from tests.integration.conftest import OPERATOR
from tests.unit.test_domain import tiny_network

FAST = JobSettings(job_timeout_s=60, lease_ttl_s=4, worker_grace_s=10, progress_every_s=0.5,
                   retry_base_s=0.3, retry_max_s=2)


def scenario(container: Container, tenant: str = "acme") -> uuid.UUID:
    dataset = container.app.import_dataset(tenant, "tiny", tiny_network(), OPERATOR)
    return container.app.create_scenario(tenant, dataset, "base", OPERATOR)


def request(container: Container, scenario_id: uuid.UUID, model: str = "builtin",
            count: int = 1, tenant: str = "acme", **parameters: Any) -> list[uuid.UUID]:
    return [container.app.request_simulation(tenant, scenario_id, model,
                                             {"reuse": False, **parameters}, OPERATOR)
            for _ in range(count)]


def model_script(tmp_path: Path, name: str, body: str) -> str:
    """An external model: a Python script reading the job on stdin (command line)."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return f"{sys.executable} {path}"


FIXED_COST = """
import json, sys, time
job = json.load(sys.stdin)
time.sleep({seconds})
links = [{{"id": l["id"], "flow": 1.0, "cost": l["free_flow_time"]}}
         for l in job["network"]["links"]]
print(json.dumps({{"schema": "cartolog.model-output/1", "links": links,
                  "indicators": {{"cost_s": {seconds}}}}}))
"""


def fixed_cost_model(tmp_path: Path, seconds: float) -> str:
    return model_script(tmp_path, f"fixed_{seconds}", FIXED_COST.format(seconds=seconds))


class Pipeline:
    """Relay, dispatcher and recorder in threads; workers in threads or subprocesses."""

    def __init__(self, container: Container, settings: JobSettings = FAST) -> None:
        self.container = container
        self.settings = settings
        self.loops: list[tuple[Any, threading.Thread]] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    def start_core(self) -> Pipeline:
        self.container.ensure_topics()
        self._thread(self.container.relay())
        self._thread(jobs_wiring.dispatcher(self.container, self.settings))
        self.recorder = jobs_wiring.recorder(self.container)
        self._thread(self.recorder)
        return self

    def worker_thread(self) -> Any:
        loop = jobs_wiring.worker(self.container, self.settings)
        self._thread(loop)
        return loop

    def _thread(self, loop: Any) -> None:
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        self.loops.append((loop, thread))

    def worker_process(self, log_name: str = "worker") -> subprocess.Popen[bytes]:
        s, js = self.container.settings, self.settings
        env = {**os.environ, "DATABASE_URL": s.database_url,
               "KAFKA_BOOTSTRAP_SERVERS": self.container.bootstrap_servers,
               "CARTOLOG_TOPIC_PREFIX": s.topic_prefix,
               "CARTOLOG_JOBS_PARTITIONS": str(s.jobs_partitions),
               "CARTOLOG_EVENTS_PARTITIONS": str(s.events_partitions),
               "CARTOLOG_JOB_TIMEOUT_S": str(js.job_timeout_s),
               "CARTOLOG_LEASE_TTL_S": str(js.lease_ttl_s),
               "CARTOLOG_WORKER_GRACE_S": str(js.worker_grace_s),
               "CARTOLOG_PROGRESS_EVERY_S": str(js.progress_every_s),
               "CARTOLOG_WORKER_LIVENESS_S": str(js.worker_liveness_s),
               "CARTOLOG_EXTERNAL_MODEL_COMMAND": js.external_model_command}
        log = open(REPO / ".cartolog" / f"{log_name}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker"], cwd=REPO,
                                   env=env, stdout=log, stderr=log)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        for loop, _ in self.loops:
            loop.stop()
        for _, thread in self.loops:
            thread.join(30)


@contextlib.contextmanager
def pipeline(container: Container, settings: JobSettings = FAST) -> Iterator[Pipeline]:
    running = Pipeline(container, settings).start_core()
    try:
        yield running
    finally:
        running.stop()


def run_of(container: Container, run_id: uuid.UUID) -> SimulationRun:
    return container.app.get_run("acme", run_id)


def wait_terminal(container: Container, run_ids: list[uuid.UUID], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(run_ids)
    while pending:
        pending = [r for r in pending if run_of(container, r).status not in TERMINAL]
        if pending and time.monotonic() > deadline:
            states = {str(r): run_of(container, r).status for r in pending[:5]}
            raise AssertionError(f"{len(pending)} runs not finished after {timeout}s: {states}")
        time.sleep(0.2)


def event_types(container: Container, run_id: uuid.UUID) -> list[str]:
    """The run's stored event types, e.g. ['Requested', 'Started', 'Completed']."""
    events = container.app.recorder.select_events(run_id)
    return [e.topic.rsplit(".", 1)[-1] for e in events]


def cli(container: Container, *args: str) -> subprocess.CompletedProcess[str]:
    s = container.settings
    env = {**os.environ, "DATABASE_URL": s.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": container.bootstrap_servers,
           "CARTOLOG_TOPIC_PREFIX": s.topic_prefix,
           "CARTOLOG_JOBS_PARTITIONS": str(s.jobs_partitions),
           "CARTOLOG_EVENTS_PARTITIONS": str(s.events_partitions)}
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def processes_running(marker: str) -> list[int]:
    """Pids of live processes whose command line contains `marker`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in text and state != "Z":
            found.append(int(cmdline.parent.name))
    return found
