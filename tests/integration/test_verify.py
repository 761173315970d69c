"""`cartolog log verify` on the real broker and PostGIS: passes on a healthy system and
reports each injected fault (missing or tampered record, projection behind or damaged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from adapters.envelope import encode, envelope
from adapters.kafka import make_producer
from domain.edits import CloseLink, SetZoneAttributes
from infra.settings import Settings
from infra.wiring import Container, build
from tests.conftest import REPO
from tests.integration.conftest import OPERATOR
from tests.integration.projections.conftest import relay_and_projector, wait_caught_up
from tests.unit.test_domain import tiny_network


@pytest.fixture()
def system(settings: Settings, fresh_database_url: str) -> Iterator[Container]:
    """A database of its own, so the projections hold exactly this test's log."""
    built = build(settings.model_copy(update={"database_url": fresh_database_url}))
    built.app.register_tenant("acme", OPERATOR)
    dataset = built.app.import_dataset("acme", "tiny", tiny_network(), OPERATOR)
    scenario_id = built.app.create_scenario("acme", dataset, "base", OPERATOR)
    built.app.edit_scenario("acme", scenario_id, 1, [CloseLink("a")], OPERATOR)
    built.app.edit_scenario("acme", scenario_id, 2, [SetZoneAttributes(1, population=7.0)],
                            OPERATOR)
    yield built
    built.close()


def project(container: Container) -> None:
    """Relay the store to the topic and let the projector catch up."""
    with relay_and_projector(container):
        wait_caught_up(container)


def publish(container: Container, skip: int | None = None, tamper: int | None = None) -> None:
    """Publish the store to the events topic by hand, dropping or altering one event."""
    container.ensure_topics()
    producer = make_producer(container.bootstrap_servers)
    for index, notification in enumerate(container.reader().after(0, 100_000)):
        if index == skip:
            continue
        document = envelope(notification, container.app.mapper)
        if index == tamper:
            document["payload"] = {**document["payload"], "tampered": True}
        producer.send(container.settings.events_topic, key=document["aggregate_id"].encode(),
                      value=encode(document))
    producer.flush()
    producer.close()


def verify(container: Container) -> tuple[int, list[str]]:
    settings = container.settings
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": container.bootstrap_servers,
           "CARTOLOG_TOPIC_PREFIX": settings.topic_prefix}
    done = subprocess.run([sys.executable, "-m", "infra.cli", "log", "verify", "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
                          check=False)
    report = json.loads(done.stdout)
    assert report["consistent"] == (done.returncode == 0), done.stderr
    return done.returncode, report["problems"]


def test_healthy_system_passes_then_a_deleted_row_and_a_lagging_projection_are_reported(
    system: Container,
) -> None:
    project(system)
    assert verify(system) == (0, [])

    with system.engine.begin() as connection:
        deleted = connection.execute(text("DELETE FROM scenarios WHERE tenant_id = 'acme'"))
    assert deleted.rowcount == 1
    code, problems = verify(system)
    assert code == 1
    assert problems == ["projection read_model: table scenarios: 1 rows missing, "
                        "0 rows not produced by a replay of the log"]

    project(system)  # nothing new to apply: the damage stays until a rebuild
    scenario = system.app.get_scenario("acme", scenario_id(system))
    system.app.edit_scenario("acme", scenario.id, scenario.version, [CloseLink("b")], OPERATOR)
    code, problems = verify(system)  # the projector is not running: read_model is behind
    assert code == 1
    assert any(p.startswith("topic: missing ") for p in problems)
    assert any("has not applied every stored event" in p for p in problems)


def scenario_id(container: Container) -> uuid.UUID:
    with container.engine.connect() as connection:
        found: uuid.UUID = connection.execute(text(
            "SELECT originator_id FROM cartolog_events WHERE topic LIKE '%Scenario.Created'"
        )).scalar_one()
    return found


def test_verify_reports_a_missing_message(system: Container) -> None:
    publish(system, skip=3)
    code, problems = verify(system)
    assert code == 1
    assert [p for p in problems if p.startswith("topic:")] == [
        next(p for p in problems if p.startswith("topic: missing "))]


def test_verify_reports_a_tampered_payload(system: Container) -> None:
    publish(system, tamper=2)
    code, problems = verify(system)
    topic_problems = [p for p in problems if p.startswith("topic:")]
    assert code == 1
    assert len(topic_problems) == 1 and "payload that differs from the store" in topic_problems[0]
