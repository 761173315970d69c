"""Fair, ordered job delivery on the real broker with two worker processes (decision 0310)."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from adapters.job_queue import JobQueue
from adapters.jobs_tables import job_leases, job_outbox, job_workers
from domain.simulation import TERMINAL
from infra.settings import JobSettings
from infra.wiring import Container
from tests.integration.conftest import OPERATOR
from tests.integration.jobs.harness import (
    FAST,
    Pipeline,
    event_types,
    model_script,
    pipeline,
    request,
    scenario,
    wait_terminal,
)
from tests.integration.logcheck import wait_for

JOB_S = 2.5
SETTINGS = FAST.model_copy(update={"worker_liveness_s": 1.0})


def _starts(container: Container, run_ids: list[uuid.UUID]
            ) -> list[tuple[datetime, uuid.UUID, int]]:
    """(time, run, attempt) of every Started event of these runs, earliest first."""
    found = []
    for run_id in run_ids:
        for event in container.app.events.get(run_id):
            if type(event).__name__ == "Started":
                found.append((event.timestamp, run_id, event.attempt))  # type: ignore[attr-defined]
    return sorted(found)


def _live_workers(container: Container) -> int:
    query = select(job_workers.c.name).where(func.cardinality(job_workers.c.partitions) > 0)
    with container.engine.connect() as connection:
        return len(connection.execute(query).all())


def _queued(container: Container) -> int:
    query = select(func.count()).select_from(job_outbox).where(job_outbox.c.kind == "job")
    with container.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def _expected_start(queue: JobQueue, run_id: uuid.UUID) -> datetime | None:
    estimate = queue.estimate(run_id)
    return None if estimate is None else estimate.expected_start_at


def _running_leases(container: Container) -> list[tuple[uuid.UUID, int, int]]:
    """(run, attempt, worker pid) of every lease being computed."""
    query = select(job_leases.c.run_id, job_leases.c.attempt, job_leases.c.worker).where(
        job_leases.c.state == "running")
    with container.engine.connect() as connection:
        return [(r.run_id, r.attempt, int(r.worker.split(":")[1]))
                for r in connection.execute(query)]


def _start_of(container: Container, run_id: uuid.UUID, attempt: int) -> datetime | None:
    for event in container.app.events.get(run_id):
        if type(event).__name__ == "Started" and event.attempt == attempt:  # type: ignore[attr-defined]
            return event.timestamp  # type: ignore[no-any-return]
    return None


def _two_workers(running: Pipeline, container: Container) -> dict[int, subprocess.Popen[bytes]]:
    workers = {p.pid: p for p in (running.worker_process("fair-1"),
                                  running.worker_process("fair-2"))}
    wait_for(lambda: _live_workers(container) == 2, 90, "two workers holding partitions")
    return workers


# An external model that sleeps max_iterations / 100 seconds: each run chooses its length.
SLEEPER = """
import json, sys, time
job = json.load(sys.stdin)
time.sleep(job["assignment"]["max_iterations"] / 100)
links = [{"id": l["id"], "flow": 1.0, "cost": l["free_flow_time"]}
         for l in job["network"]["links"]]
print(json.dumps({"schema": "cartolog.model-output/1", "links": links, "indicators": {}}))
"""


def _sleeper(tmp_path: Path) -> JobSettings:
    return SETTINGS.model_copy(
        update={"external_model_command": model_script(tmp_path, "sleeper", SLEEPER)})


def _runs(container: Container, scenario_id: uuid.UUID, seconds: float, count: int = 1,
          tenant: str = "acme") -> list[uuid.UUID]:
    return request(container, scenario_id, "external", count, tenant,
                   max_iterations=int(seconds * 100))


def test_a_second_tenant_is_not_held_back_behind_a_burst(
        container: Container, tmp_path: Path) -> None:
    acme, rival = scenario(container), scenario(container, "rival")
    queue = JobQueue(container.engine, container.settings.jobs_topic, 1.0)
    with pipeline(container, _sleeper(tmp_path)) as running:
        _two_workers(running, container)
        a_runs = _runs(container, acme, JOB_S, count=40)
        b_run = _runs(container, rival, JOB_S, tenant="rival")[0]
        wait_for(lambda: _queued(container) == 41, 60, "every job in the outbox")
        waiting = queue.estimate(a_runs[-1])
        assert waiting is not None and waiting.position >= 30

        wait_for(lambda: _start_of(container, b_run, 1) is not None, 60, "the rival run started")
        b_started = _start_of(container, b_run, 1)
        assert b_started is not None
        a_starts = _starts(container, a_runs)
        assert len([s for s in a_starts if s[0] < b_started]) <= 5, a_starts[:8]
        # Tenant a's runs started in request order, give or take the few whose events reached
        # the dispatcher (over several partitions) after later ones had been released.
        for rank, (_, run_id, _) in enumerate(a_starts):
            assert a_runs.index(run_id) < rank + 4, [a_runs.index(s[1]) for s in a_starts]
        wait_for(lambda: _expected_start(queue, a_runs[-1]) is not None, 30,
                 "a finished job to estimate from")
        backlog = queue.estimate(a_runs[-1])
        assert backlog is not None and backlog.expected_start_at is not None
        # About 30 jobs ahead on two workers, each lasting JOB_S.
        assert (backlog.expected_start_at - datetime.now(UTC)).total_seconds() > 10 * JOB_S
        for run_id in a_runs:
            if container.app.get_run("acme", run_id).status not in TERMINAL:
                container.app.cancel_run("acme", run_id, "test over", OPERATOR)
        wait_for(lambda: container.app.get_run("rival", b_run).status in TERMINAL, 60,
                 "the rival run finished")
    assert container.app.get_run("rival", b_run).status == "completed"


def test_a_job_whose_worker_is_killed_runs_next(container: Container, tmp_path: Path) -> None:
    acme = scenario(container)
    with pipeline(container, _sleeper(tmp_path)) as running:
        workers = _two_workers(running, container)
        long_run = _runs(container, acme, 8.0)[0]
        wait_for(lambda: _start_of(container, long_run, 1) is not None, 60, "the long run")
        victim = _runs(container, acme, 3.0)[0]
        later = _runs(container, acme, 0.5, count=4)
        wait_for(lambda: _start_of(container, victim, 1) is not None, 60, "the victim run")
        holder = next(pid for run, _, pid in _running_leases(container) if run == victim)
        time.sleep(0.5)
        workers[holder].send_signal(signal.SIGKILL)
        workers[holder].wait(10)
        killed_at = datetime.now(UTC)
        wait_terminal(container, [long_run, victim, *later], 120)
    after = [s for s in _starts(container, [victim, *later]) if s[0] > killed_at]
    assert after[0][1:] == (victim, 1), after
    assert event_types(container, victim).count("Started") == 2
    assert event_types(container, victim).count("Completed") == 1
    assert "AttemptFailed" not in event_types(container, victim)
