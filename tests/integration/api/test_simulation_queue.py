"""`GET /v1/simulations/{id}`: a waiting run's queue position and expected start time."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert

from adapters.job_queue import ESTIMATE_TTL_S
from adapters.jobs_tables import job_leases, job_workers
from infra import jobs_wiring
from tests.integration.api.conftest import Api
from tests.integration.jobs.harness import FAST

# Estimates come from a snapshot of the queue at most this old (adapters/job_queue.py).
SNAPSHOT_S = ESTIMATE_TTL_S + 0.05


def _queue(api: Api, count: int) -> list[str]:
    scenario = api.scenario()
    runs = [api.post(f"/v1/scenarios/{scenario}/simulations", {"model": "builtin"}).json()["id"]
            for _ in range(count)]
    dispatcher = jobs_wiring.dispatcher(api.container, FAST)
    for run in runs:  # the dispatcher queues each job; no worker takes them
        dispatcher.reconcile(uuid.UUID(run))
    return runs


def test_a_waiting_run_shows_its_place_and_when_it_should_start(api: Api) -> None:
    runs = _queue(api, 3)
    third = api.get(f"/v1/simulations/{runs[2]}").json()
    assert third["status"] == "queued"
    assert third["queue_position"] == 2
    assert third["expected_start_at"] is None  # no attempt has finished to measure by

    engine, topic = api.container.engine, api.container.settings.jobs_topic
    with engine.begin() as connection:
        connection.execute(insert(job_workers).values(
            name="w1", topic=topic, partitions=[0], busy=True))
        connection.execute(insert(job_leases).values(
            run_id=uuid.uuid4(), attempt=1, tenant_id="acme", worker="w1", state="done",
            lease_until=datetime.now(UTC), result={"duration_s": 10.0}))
    time.sleep(SNAPSHOT_S)
    third = api.get(f"/v1/simulations/{runs[2]}").json()
    # One worker, two jobs ahead of 10 s each.
    wait = (datetime.fromisoformat(third["expected_start_at"]) - datetime.now(UTC))
    assert 15 < wait.total_seconds() <= 20.5


def test_a_finished_run_has_no_queue_position(api: Api) -> None:
    runs = _queue(api, 2)
    assert api.client.delete(f"/v1/simulations/{runs[0]}", headers=api.headers()).status_code \
        == 202
    assert api.get(f"/v1/simulations/{runs[1]}").json()["queue_position"] == 1
    jobs_wiring.dispatcher(api.container, FAST).reconcile(uuid.UUID(runs[0]))
    time.sleep(SNAPSHOT_S)
    cancelled = api.get(f"/v1/simulations/{runs[0]}").json()
    assert cancelled["queue_position"] is None and cancelled["expected_start_at"] is None
    assert api.get(f"/v1/simulations/{runs[1]}").json()["queue_position"] == 0
    assert api.get(f"/v1/simulations/{runs[1]}", tenant="rival").status_code == 404
