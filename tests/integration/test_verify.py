"""`cartolog log verify` catches a missing and a tampered record on the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from adapters.envelope import encode, envelope
from adapters.kafka import make_producer
from domain.edits import CloseLink, SetZoneAttributes
from infra.wiring import Container
from tests.conftest import REPO
from tests.integration.conftest import OPERATOR
from tests.unit.test_domain import tiny_network


def workload(container: Container) -> None:
    dataset = container.app.import_dataset("acme", "tiny", tiny_network(), OPERATOR)
    scenario_id = container.app.create_scenario("acme", dataset, "base", OPERATOR)
    container.app.edit_scenario("acme", scenario_id, 1, [CloseLink("a")], OPERATOR)
    container.app.edit_scenario("acme", scenario_id, 2,
                                [SetZoneAttributes(1, population=7.0)], OPERATOR)


def publish(container: Container, skip: int | None = None, tamper: int | None = None) -> int:
    """Publish the whole store to the events topic, dropping or altering one event."""
    container.ensure_topics()
    producer = make_producer(container.bootstrap_servers)
    notifications = container.reader().after(0, 100_000)
    for index, notification in enumerate(notifications):
        if index == skip:
            continue
        document = envelope(notification, container.app.mapper)
        if index == tamper:
            document["payload"] = {**document["payload"], "tampered": True}
        producer.send(container.settings.events_topic, key=document["aggregate_id"].encode(),
                      value=encode(document))
    producer.flush()
    producer.close()
    return notifications[-1].id


def verify(container: Container) -> subprocess.CompletedProcess[str]:
    settings = container.settings
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": container.bootstrap_servers,
           "CARTOLOG_TOPIC_PREFIX": settings.topic_prefix}
    return subprocess.run([sys.executable, "-m", "infra.cli", "log", "verify", "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_verify_passes_on_a_healthy_log(container: Container) -> None:
    workload(container)
    publish(container)
    done = verify(container)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == {"consistent": True, "problems": []}


def test_verify_reports_a_missing_message(container: Container) -> None:
    workload(container)
    publish(container, skip=3)
    done = verify(container)
    problems = json.loads(done.stdout)["problems"]
    assert done.returncode == 1
    assert len(problems) == 1 and problems[0].startswith("topic: missing ")


def test_verify_reports_a_tampered_payload(container: Container) -> None:
    workload(container)
    publish(container, tamper=2)
    done = verify(container)
    problems = json.loads(done.stdout)["problems"]
    assert done.returncode == 1
    assert len(problems) == 1 and "payload that differs from the store" in problems[0]
