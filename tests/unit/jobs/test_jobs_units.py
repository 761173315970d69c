"""Job pipeline pieces without I/O: messages, back-off, model input mapping, metrics, domain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from adapters.dispatcher import RetryPolicy
from adapters.jobs import JobMessage, ResultMessage, decode_job, decode_result, encode, job_id
from domain.application import Cartolog
from domain.simulation import RUNNING, SimulationRun
from domain.values import Actor
from simulation_worker.metrics import WorkerMetrics
from simulation_worker.model import content_hash
from simulation_worker.model_input import build, load
from tests.unit.fakes import InMemoryBlobStore
from tests.unit.test_domain import tiny_network

ME = Actor("tests")


def _job(**changes: object) -> JobMessage:
    fields: dict[str, object] = dict(
        run_id="r1", attempt=2, tenant_id="acme", model="builtin", model_version="builtin/1",
        parameters={"gap": 1e-4}, input_sha256="s" * 64, input_hash="h" * 64,
        enqueued_at=1.0)
    fields.update(changes)
    return JobMessage(**fields)  # type: ignore[arg-type]


def test_job_message_round_trips_and_has_a_deterministic_id() -> None:
    job = _job()
    assert decode_job(encode(job)) == job
    assert job.job_id == job_id("r1", 2) != job_id("r1", 3)


def test_reuse_key_ignores_the_reuse_switch_but_not_parameters() -> None:
    assert _job(parameters={"gap": 1e-4, "reuse": False}).reuse_key == _job().reuse_key
    assert _job(parameters={"gap": 1e-5}).reuse_key != _job().reuse_key
    assert not _job(parameters={"reuse": False}).reuse_allowed and _job().reuse_allowed


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(base_s=5, max_s=30)
    assert [policy.delay(a) for a in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]


def test_scenario_edits_map_onto_the_model_input_and_survive_the_claim_check() -> None:
    edited = {"zone_attributes": {"1": {"population": 500.0}}, "closed_links": ["c"],
              "link_changes": {"a": {"capacity": 2000.0}},
              "added_links": {"d": {"id": "d", "from_node": 3, "to_node": 1, "capacity": 10.0,
                                    "length": 1.0, "free_flow_time": 1.0}},
              "demand": {"trip_rate": 2.0, "deterrence": "power", "beta": 0.5}}
    run_input = build(tiny_network(), edited, {"algorithm": "fw", "max_iterations": 7})
    model = run_input.model
    assert run_input.link_names == ("a", "b", "c", "d")
    assert list(model.network.link_open) == [True, True, False, True]
    assert model.network.capacity[0] == 2000.0
    assert model.zones[0].population == 500.0
    assert (model.demand.trip_rate, model.demand.deterrence) == (2.0, "power")  # type: ignore[union-attr]
    assert (model.assignment.algorithm, model.assignment.max_iterations) == ("fw", 7)
    back = load(run_input.document())
    assert back.link_names == run_input.link_names
    assert content_hash(back.model) == content_hash(model)


def test_metrics_render_prometheus_text() -> None:
    metrics = WorkerMetrics(lag=lambda: {0: 3, 1: 0})
    metrics.started()
    metrics.finished(2.0)
    metrics.attempt("completed")
    text = metrics.render()
    assert 'cartolog_worker_job_duration_seconds_bucket{le="5"} 1' in text
    assert 'cartolog_worker_group_lag{partition="0"} 3' in text
    assert "cartolog_worker_jobs_in_flight 0" in text


def _app() -> Cartolog:
    return Cartolog({"PERSISTENCE_MODULE": "eventsourcing.popo"}, blobs=InMemoryBlobStore())


def test_a_lost_workers_attempt_can_be_taken_over_and_progress_is_visible() -> None:
    app = _app()
    app.register_tenant("acme", ME)
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    scenario = app.create_scenario("acme", dataset, "s", ME)
    run_id = app.request_simulation("acme", scenario, "builtin", {}, ME)
    app.start_attempt("acme", run_id, 1, "w1", ME)
    app.start_attempt("acme", run_id, 1, "w2", ME)  # w1 died; its lease expired
    app.report_progress("acme", run_id, 1, 4, 0.01, 1.5, ME)
    run = app.get_run("acme", run_id)
    assert (run.status, run.attempt, run.worker) == (RUNNING, 1, "w2")
    assert run.progress == {"iteration": 4, "relative_gap": 0.01, "elapsed_s": 1.5}
    app.complete_run("acme", run_id, 1, "x" * 64, {"k": 1.0}, 2.0, ME, reused_from="other")
    assert app.get_run("acme", run_id).reused_from == "other"


def test_completed_v1_events_are_upcast_without_reuse() -> None:
    state = {"attempt": 1}
    SimulationRun.Completed.upcast_v1_v2(state)
    assert state == {"attempt": 1, "reused_from": None}
    assert json.loads(encode({"a": 1})) == {"a": 1}


def test_a_result_message_with_fields_this_version_does_not_know_still_decodes() -> None:
    message = ResultMessage(run_id="r", attempt=1, tenant_id="acme", outcome="completed",
                            worker="w", result_sha256="ab")
    newer = json.loads(encode(message)) | {"stages": {"received": 1.0}}
    assert decode_result(json.dumps(newer).encode()) == message


def test_up_shares_the_cores_among_its_workers_models_unless_told() -> None:
    from infra.supervisor import MODEL_THREADS, share_cores

    cores = os.cpu_count() or 1
    assert share_cores({}, 2)[MODEL_THREADS] == str(max(1, cores // 2))
    assert share_cores({}, 4 * cores)[MODEL_THREADS] == "1"
    assert share_cores({MODEL_THREADS: "3"}, 2)[MODEL_THREADS] == "3"
    assert MODEL_THREADS not in share_cores({}, 0)


def test_up_shares_the_memory_among_its_workers_models_unless_told() -> None:
    from infra.machine import memory_mb
    from infra.supervisor import MODEL_MEMORY, share_cores

    total = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal:"))) // 1024
    assert 0 < memory_mb() <= 0.75 * total + 1
    assert share_cores({}, 2)[MODEL_MEMORY] == str(memory_mb() // 2)
    assert share_cores({MODEL_MEMORY: "900"}, 2)[MODEL_MEMORY] == "900"
    assert MODEL_MEMORY not in share_cores({}, 0)


def test_resident_memory_counts_the_processes_a_model_process_started() -> None:
    from simulation_worker.process import resident_mb

    script = "import sys, time; held = bytearray(300 * 2**20); print(1, flush=True); time.sleep(30)"
    child = subprocess.Popen(["/bin/sh", "-c", f"{sys.executable} -c '{script}'; true"],
                             stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"1\n"
        # the shell holds almost nothing itself: the 300 MB are its child's
        assert resident_mb(child.pid) > 300
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert resident_mb(child.pid) == 0.0  # gone
