"""Retries with back-off, dead letters and redrive; timeouts; cancellation."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters.blobs import PostgresBlobStore
from adapters.kafka import read_topic
from infra.wiring import Container
from tests.integration.conftest import OPERATOR
from tests.integration.jobs.harness import (
    FAST,
    cli,
    event_types,
    model_script,
    pipeline,
    processes_running,
    request,
    run_of,
    scenario,
    wait_terminal,
)
from tests.integration.logcheck import wait_for

FAILS_WHILE_BROKEN = """
import json, os, sys
json.load(sys.stdin)
if os.path.exists({flag!r}):
    print("licence server unreachable", file=sys.stderr)
    sys.exit(3)
print(json.dumps({{"schema": "cartolog.model-output/1", "links": [], "indicators": {{"ok": 1}}}}))
"""

def one_attempt(container: Container, scenario_id: uuid.UUID, model: str,
                **parameters: Any) -> uuid.UUID:
    """A run of `model` that is dead-lettered after its first failed attempt."""
    return container.app.request_simulation("acme", scenario_id, model, parameters, OPERATOR,
                                            max_attempts=1)


HANGS = """
import json, sys, time
json.load(sys.stdin)
time.sleep(600)  # {marker}
"""


def test_failing_model_is_retried_dead_lettered_and_redriven(
        container: Container, tmp_path: Path) -> None:
    flag = tmp_path / "broken"
    flag.write_text("yes")
    command = model_script(tmp_path, "flaky", FAILS_WHILE_BROKEN.format(flag=str(flag)))
    settings = FAST.model_copy(update={"external_model_command": command})
    scenario_id = scenario(container)
    with pipeline(container, settings) as running:
        running.worker_thread()
        [run_id] = request(container, scenario_id, "external")
        wait_terminal(container, [run_id], 60)
        run = run_of(container, run_id)
        assert run.status == "dead_lettered"
        assert "status 3" in (run.last_error or "")
        assert "licence server unreachable" in (run.last_error or "")
        assert event_types(container, run_id).count("AttemptFailed") == 3
        assert event_types(container, run_id).count("Started") == 3
        _assert_backoff(container, run_id)
        wait_for(lambda: _dead_letters(container) != [], 20, "the dead-letter message")
        [letter] = _dead_letters(container)
        assert (letter["run_id"], letter["attempt"]) == (str(run_id), 3)
        assert "licence server unreachable" in letter["error"]

        listed = cli(container, "dlq", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [r["run_id"] for r in json.loads(listed.stdout)] == [str(run_id)]

        flag.unlink()  # the cause is fixed
        redriven = cli(container, "dlq", "redrive", str(run_id))
        assert redriven.returncode == 0, redriven.stderr
        wait_for(lambda: run_of(container, run_id).status == "completed", 60,
                 "the redriven run to complete")
    assert event_types(container, run_id)[-3:] == ["Redriven", "Started", "Completed"]
    assert run_of(container, run_id).attempt == 4
    assert json.loads(cli(container, "dlq", "list", "--json").stdout) == []


def _assert_backoff(container: Container, run_id: uuid.UUID) -> None:
    stored = [container.app.mapper.to_domain_event(e)
              for e in container.app.recorder.select_events(run_id)]
    failed = [e.timestamp for e in stored if type(e).__name__ == "AttemptFailed"]
    started = [e.timestamp for e in stored if type(e).__name__ == "Started"]
    # Attempt 2 waits >= 0.3 s after attempt 1 failed, attempt 3 >= 0.6 s after attempt 2.
    assert (started[1] - failed[0]).total_seconds() >= 0.3
    assert (started[2] - failed[1]).total_seconds() >= 0.6


def _dead_letters(container: Container) -> list[dict[str, object]]:
    records = read_topic(container.bootstrap_servers, container.settings.dlq_topic)
    return [json.loads(r.value) for r in records]


def test_hanging_model_is_killed_at_the_timeout_and_the_attempt_fails(
        container: Container, tmp_path: Path) -> None:
    marker = f"hang-{uuid.uuid4().hex[:8]}"
    command = model_script(tmp_path, marker, HANGS.format(marker=marker))
    settings = FAST.model_copy(update={"external_model_command": command,
                                       "job_timeout_s": 2.0})
    scenario_id = scenario(container)
    with pipeline(container, settings) as running:
        running.worker_thread()
        run_id = one_attempt(container, scenario_id, "external")
        wait_for(lambda: processes_running(marker) != [], 30, "the model to start")
        wait_terminal(container, [run_id], 30)
    run = run_of(container, run_id)
    assert run.status == "dead_lettered"
    assert "timed out after 2 s" in (run.last_error or "")
    assert event_types(container, run_id).count("AttemptFailed") == 1
    wait_for(lambda: processes_running(marker) == [], 10, "the hanging model to be killed")


GROWS = """
import json, sys, time
json.load(sys.stdin)
held = bytearray({megabytes} * 1024 * 1024)  # zero-filled: every page is touched
time.sleep(60)  # {marker}
"""


def test_a_model_past_its_memory_limit_is_killed_and_its_job_fails(
        container: Container, tmp_path: Path) -> None:
    """An external model started by the model process counts against the limit too; a model
    within it completes under the same limit."""
    marker = f"grow-{uuid.uuid4().hex[:8]}"
    command = model_script(tmp_path, marker, GROWS.format(megabytes=800, marker=marker))
    settings = FAST.model_copy(update={"external_model_command": command,
                                       "model_memory_mb": 500})
    scenario_id = scenario(container)
    with pipeline(container, settings) as running:
        running.worker_thread()
        run_id = one_attempt(container, scenario_id, "external")
        wait_terminal(container, [run_id], 40)
        run = run_of(container, run_id)
        assert run.status == "dead_lettered"
        assert run.last_error == ("the model needed more than 500 MB of memory "
                                  "(CARTOLOG_MODEL_MEMORY_MB); model killed")
        wait_for(lambda: processes_running(marker) == [], 10, "the model to be killed")
        # The built-in model, warm, fits the same limit: the next run completes.
        [fits] = request(container, scenario_id, "builtin")
        wait_terminal(container, [fits], 60)
    assert run_of(container, fits).status == "completed"


def test_a_result_too_large_to_store_fails_its_attempt_and_the_worker_carries_on(
        container: Container) -> None:
    """Before, the blob store's refusal escaped the worker's loop: the worker died, and the
    job, never committed, killed the next worker too."""
    scenario_id = scenario(container)
    with pipeline(container) as running:
        worker = running.worker_thread()
        # the worker's store only: every output is larger (the job's input is stored first)
        worker.blobs = PostgresBlobStore(container.engine, max_bytes=64)
        run_id = one_attempt(container, scenario_id, "builtin", reuse=False)
        wait_terminal(container, [run_id], 60)
        run = run_of(container, run_id)
        assert run.status == "dead_lettered"
        assert (run.last_error or "").startswith("the model's result cannot be stored: blob of ")
        assert (run.last_error or "").endswith(" exceeds 64 (CARTOLOG_BLOB_MAX_BYTES)")
        worker.blobs = container.blobs
        [after] = request(container, scenario_id)  # the same worker takes the next job
        wait_terminal(container, [after], 60)
    assert run_of(container, after).status == "completed"


def test_a_run_whose_input_would_pass_its_tenants_quota_fails_and_dispatch_goes_on(
        container: Container) -> None:
    """The dispatcher stores each run's input. A refusal there used to escape its loop: the
    dispatcher died, and every tenant's runs waited. Now the run fails with the reason."""
    tenant = f"quota{uuid.uuid4().hex[:8]}"  # its own blobs only: the quota counts them all
    container.app.register_tenant(tenant, OPERATOR)
    full = scenario(container, tenant)
    store = container.blobs
    with pipeline(container) as running:
        running.worker_thread()
        store.quota_bytes = store.used_bytes(tenant)  # any new bytes of this tenant's: refused
        try:
            refused = container.app.request_simulation(tenant, full, "builtin", {"reuse": False},
                                                       OPERATOR, max_attempts=1)
            for _ in range(300):  # bounded: 60 s
                if container.app.get_run(tenant, refused).status in ("dead_lettered",
                                                                     "completed"):
                    break
                time.sleep(0.2)
        finally:
            store.quota_bytes = None
        run = container.app.get_run(tenant, refused)
        assert run.status == "dead_lettered"
        assert (run.last_error or "").startswith("the run's input cannot be stored: storing ")
        assert "past its storage quota" in (run.last_error or "")
        [after] = request(container, scenario(container))  # another tenant's, and then its own
        [own] = request(container, full, tenant=tenant)
        wait_terminal(container, [after], 60)
        for _ in range(300):
            if container.app.get_run(tenant, own).status == "completed":
                break
            time.sleep(0.2)
    assert run_of(container, after).status == "completed"
    assert container.app.get_run(tenant, own).status == "completed"


class _BrokenCache:
    def lookup(self, tenant_id: str, reuse_key: str) -> None:
        raise ValueError("a result cache this job breaks")


def test_an_unexpected_error_in_the_worker_fails_the_attempt_not_the_worker(
        container: Container) -> None:
    scenario_id = scenario(container)
    with pipeline(container) as running:
        worker = running.worker_thread()
        cache, worker.cache = worker.cache, _BrokenCache()
        run_id = one_attempt(container, scenario_id, "builtin")
        wait_terminal(container, [run_id], 60)
        run = run_of(container, run_id)
        assert run.status == "dead_lettered"
        assert run.last_error == ("the worker could not complete the job: ValueError: a result "
                                  "cache this job breaks")
        worker.cache = cache
        [after] = request(container, scenario_id)  # the same worker takes the next job
        wait_terminal(container, [after], 60)
    assert run_of(container, after).status == "completed"


def test_cancelling_a_running_job_kills_its_model(container: Container, tmp_path: Path) -> None:
    marker = f"cancel-{uuid.uuid4().hex[:8]}"
    command = model_script(tmp_path, marker, HANGS.format(marker=marker))
    settings = FAST.model_copy(update={"external_model_command": command})
    scenario_id = scenario(container)
    with pipeline(container, settings) as running:
        worker = running.worker_thread()
        [run_id] = request(container, scenario_id, "external")
        wait_for(lambda: processes_running(marker) != [], 30, "the model to start")
        wait_for(lambda: worker.current_child is not None, 10, "the model process")
        child_pid = worker.current_child.pid
        assert run_of(container, run_id).status == "running"
        # The only worker is busy: a second run waits, and is cancelled before it starts.
        [queued] = request(container, scenario_id, "external")
        container.app.cancel_run("acme", queued, "changed my mind", OPERATOR)
        container.app.cancel_run("acme", run_id, "not needed", OPERATOR)
        wait_for(lambda: processes_running(marker) == [], 10, "the model to be killed")
        wait_for(lambda: worker.current_child is None, 10, "the worker to let go")
        assert not Path(f"/proc/{child_pid}").exists() or \
            "Z" in Path(f"/proc/{child_pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        [after] = request(container, scenario_id, "builtin")
        wait_terminal(container, [after], 60)
    assert run_of(container, run_id).status == "cancelled"
    assert event_types(container, run_id)[-1] == "Cancelled"
    assert "Started" not in event_types(container, queued)


def test_a_start_that_keeps_conflicting_gives_the_job_back_and_the_run_completes(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes that keep racing the start of an attempt (VersionConflict) are retried, and
    past the retries the job is read again: the run is never left queued."""
    from domain.errors import VersionConflict
    from simulation_worker import worker as worker_module

    monkeypatch.setattr(worker_module, "START_TRIES", 3)
    original = container.app.start_attempt
    conflicts = {"left": 5}  # more than one round of tries: the job must be re-read

    def racing(*args: Any, **kwargs: Any) -> Any:
        if conflicts["left"] > 0:
            conflicts["left"] -= 1
            raise VersionConflict(args[1], 1, None)  # a concurrent write to the run
        return original(*args, **kwargs)

    monkeypatch.setattr(container.app, "start_attempt", racing)
    scenario_id = scenario(container)
    with pipeline(container) as running:
        running.worker_thread()
        [run_id] = request(container, scenario_id)
        wait_terminal(container, [run_id], timeout=120)
    assert conflicts["left"] == 0
    run = run_of(container, run_id)
    assert run.status == "completed" and run.attempt == 1
