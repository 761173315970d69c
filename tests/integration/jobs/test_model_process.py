"""The worker's model process: warmed once, kept for job after job, replaced when killed;
the dispatcher's NOTIFY wake-ups (decisions 0312, 0313)."""

from __future__ import annotations

import json
from functools import partial

import pytest

from infra import jobs_wiring
from infra.wiring import Container
from simulation_worker.child import ModelSpec, Outcome
from simulation_worker.process import ModelHost, ModelProcess
from simulation_worker.warm import warm_up_inputs
from tests.integration.jobs.harness import (
    event_types,
    pipeline,
    request,
    run_of,
    scenario,
    wait_terminal,
)


def _outcome(job: ModelProcess) -> Outcome:
    while not job.finished():
        job.messages(0.5)
    assert job.outcome is not None, job.exit_reason()
    return job.outcome


def test_one_warm_model_process_runs_job_after_job_and_is_replaced_when_killed() -> None:
    document = warm_up_inputs()[0]
    host = ModelHost(warm=True, threads=1)
    try:
        assert host.wait_ready()
        assert host.warm_up_s is not None
        first_pid = host.pid()
        outcomes = [_outcome(host.run(document, ModelSpec("builtin"))) for _ in range(3)]
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        assert host.pid() == first_pid and host.started == 1
        assert json.loads(outcomes[0].output)["links"][0]["id"] == "warm-0"

        host.run(document, ModelSpec("builtin")).kill()  # a cancelled or timed-out job
        assert host.pid() is None
        after = _outcome(host.run(document, ModelSpec("builtin")))
        assert after.ok and host.started == 2 and host.pid() not in (None, first_pid)
    finally:
        host.close()
    assert host.process is None


def test_a_model_process_that_crashes_fails_the_job_and_the_next_gets_a_fresh_one() -> None:
    host = ModelHost(warm=False)
    try:
        failed = _outcome(host.run(b"not json", ModelSpec("builtin")))
        assert not failed.ok and "JSONDecodeError" in failed.error  # a model error: kept
        pid = host.pid()
        job = host.run(warm_up_inputs()[1], ModelSpec("builtin"))
        assert pid is not None
        host.process.kill()  # type: ignore[union-attr]  # e.g. the OOM killer
        while not job.finished():
            job.messages(0.2)
        assert job.outcome is None and "killed by signal" in job.exit_reason()
        assert _outcome(host.run(warm_up_inputs()[1], ModelSpec("builtin"))).ok
        assert host.pid() != pid
    finally:
        host.close()


def test_jobs_flow_on_notifications_alone(container: Container,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With the dispatcher's periodic look an hour apart, only NOTIFY (a job queued, a worker
    turning idle) can release the jobs."""
    monkeypatch.setattr(jobs_wiring, "dispatcher",
                        partial(jobs_wiring.dispatcher, release_every_s=3600.0))
    scenario_id = scenario(container)
    with pipeline(container) as running:
        running.worker_thread()
        run_ids = request(container, scenario_id, count=3)
        wait_terminal(container, run_ids, 120)
    for run_id in run_ids:
        assert run_of(container, run_id).status == "completed", run_of(container, run_id)
        assert event_types(container, run_id).count("Completed") == 1
