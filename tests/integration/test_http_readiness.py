"""/healthz and /readyz against the real database and broker."""

from __future__ import annotations

from fastapi.testclient import TestClient

from infra.broker import free_port
from infra.http import build_api
from infra.settings import Settings
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
