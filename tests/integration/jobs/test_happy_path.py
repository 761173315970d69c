"""Dispatch → worker (child process) → result → recorder, on the real PostGIS and broker."""

from __future__ import annotations

import json

from infra.wiring import Container
from tests.integration.jobs.harness import (
    event_types,
    pipeline,
    request,
    run_of,
    scenario,
    wait_terminal,
)


def test_builtin_model_run_completes_with_results_in_the_blob_store(
        container: Container) -> None:
    scenario_id = scenario(container)
    with pipeline(container) as running:
        running.worker_thread()
        [run_id] = request(container, scenario_id)
        wait_terminal(container, [run_id], 90)
    run = run_of(container, run_id)
    assert run.status == "completed", run.last_error
    assert event_types(container, run_id).count("Completed") == 1
    assert run.result_sha256 is not None
    output = json.loads(container.blobs.get("acme", run.result_sha256))
    assert {link["id"] for link in output["links"]} == {"a", "b", "c"}
    assert run.indicators["total_trips"] > 0
