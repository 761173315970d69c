"""/healthz and /readyz against the real database and broker."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from adapters.projector.runner import ProjectionRunner
from infra.broker import free_port
from infra.http import build_api
from infra.projections_wiring import all_projections
from infra.settings import Settings
from infra.supervision import ProcessThreads
from infra.wiring import Container, build


def test_ready_when_database_and_broker_answer(container: Container) -> None:
    client = TestClient(build_api(container))
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ready", "broker": "ready",
                                         "projector": "ready"}


def test_not_ready_names_the_broker_that_does_not_answer(settings: Settings) -> None:
    dead = build(settings.model_copy(
        update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"}))
    try:
        response = TestClient(build_api(dead)).get("/readyz")
    finally:
        dead.close()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["checks"]["database"] == "ready"
    assert body["checks"]["broker"].startswith("not ready")


def test_a_crashed_projector_fails_readiness_until_it_runs_again(container: Container) -> None:
    (projection,) = all_projections(container, ["read_model"])
    runner = ProjectionRunner(container.engine, projection)
    runner.mark_crashed("projector died: OperationalError: the server closed the connection")
    client = TestClient(build_api(container))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["projector"] == (
        "not ready: RuntimeError: read_model: projector died: OperationalError: the server "
        "closed the connection")
    runner.mark_running()
    assert client.get("/readyz").status_code == 200


class _Dies:
    def __init__(self) -> None:
        self.release = threading.Event()

    def run(self) -> None:
        self.release.wait(30)
        raise RuntimeError("lost the broker for good")

    def stop(self) -> None:
        self.release.set()


def test_a_dead_process_thread_of_cartolog_up_fails_readiness(container: Container) -> None:
    threads = ProcessThreads()
    process = _Dies()
    thread = threads.start("projector", process)
    client = TestClient(build_api(container, checks={"processes": threads.check}))
    assert client.get("/readyz").json()["checks"]["processes"] == "ready"
    process.stop()
    thread.join(30)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["processes"] == (
        "not ready: RuntimeError: projector stopped (RuntimeError: lost the broker for good)")
