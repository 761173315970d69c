"""The relay on the real broker: order, crash safety, broker loss and republish."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

from adapters.relay import PositionStore
from domain.edits import SetZoneAttributes
from infra.wiring import Container
from tests.conftest import REPO, BrokerHandle
from tests.integration.conftest import OPERATOR
from tests.integration.logcheck import stored_log, topic_log, wait_for
from tests.unit.test_domain import tiny_network


def scenarios(container: Container, count: int) -> list[uuid.UUID]:
    dataset = container.app.import_dataset("acme", "tiny", tiny_network(), OPERATOR)
    return [container.app.create_scenario("acme", dataset, f"s{i}", OPERATOR)
            for i in range(count)]


class Writer(threading.Thread):
    """Appends edits to several scenarios until stopped."""

    def __init__(self, container: Container, scenario_ids: list[uuid.UUID]) -> None:
        super().__init__(daemon=True)
        self.container, self.scenario_ids = container, scenario_ids
        self.stopping = threading.Event()
        self.appended = 0

    def run(self) -> None:
        versions = dict.fromkeys(self.scenario_ids, 1)
        while not self.stopping.is_set():
            for scenario_id in self.scenario_ids:
                versions[scenario_id] = self.container.app.edit_scenario(
                    "acme", scenario_id, versions[scenario_id],
                    [SetZoneAttributes(1, population=float(self.appended))], OPERATOR)
                self.appended += 1


def relay_position(container: Container) -> int:
    return PositionStore(container.engine, f"relay:{container.settings.events_topic}").load()


def start_relay_process(container: Container) -> subprocess.Popen[bytes]:
    settings = container.settings
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": container.bootstrap_servers,
           "CARTOLOG_TOPIC_PREFIX": settings.topic_prefix,
           "CARTOLOG_EVENTS_PARTITIONS": str(settings.events_partitions),
           "CARTOLOG_RELAY_BATCH_SIZE": "50"}
    return subprocess.Popen([sys.executable, "-m", "infra.cli", "relay"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_relay_thread(container: Container) -> tuple[threading.Thread, object]:
    container.ensure_topics()
    relay = container.relay()
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    return thread, relay


def test_relay_publishes_every_event_keyed_and_in_order(container: Container) -> None:
    ids = scenarios(container, 3)
    for version, scenario_id in enumerate(ids * 3):
        current = container.app.get_scenario("acme", scenario_id).version
        container.app.edit_scenario("acme", scenario_id, current,
                                    [SetZoneAttributes(2, jobs=float(version))], OPERATOR)
    thread, relay = run_relay_thread(container)
    head = container.reader().head()
    wait_for(lambda: relay_position(container) == head, 30, "the relay to reach the head")
    relay.stop()  # type: ignore[attr-defined]
    thread.join(10)
    assert not thread.is_alive()

    topic = topic_log(container)
    assert topic.deduplicated() == stored_log(container)
    document = next(d for d in topic.documents
                    if d["aggregate_id"] == str(ids[0]) and d["aggregate_version"] == 2)
    assert set(document) >= {"event_id", "type", "schema_version", "tenant_id", "aggregate_id",
                             "aggregate_version", "position", "occurred_at", "actor",
                             "correlation_id", "payload"}
    assert document["type"] == "Scenario.ZoneAttributesSet"
    assert (document["tenant_id"], document["actor"]) == ("acme", "tests")


def test_relay_killed_five_times_loses_nothing(container: Container) -> None:
    container.ensure_topics()
    writer = Writer(container, scenarios(container, 6))
    writer.start()
    rng = random.Random(20261128)
    kills, positions = 0, [relay_position(container)]
    try:
        for _ in range(6):
            relay = start_relay_process(container)
            # Kill it at a random moment after it has started publishing, so every kill
            # lands mid-stream (the writer keeps appending all along).
            wait_for(lambda p=positions[-1]: relay_position(container) > p, 90,  # type: ignore[misc]
                     "the relay to make progress")
            time.sleep(rng.uniform(0.0, 0.8))
            assert relay.poll() is None, relay.stderr.read().decode() if relay.stderr else ""
            relay.send_signal(signal.SIGKILL)
            relay.wait()
            kills += 1
            positions.append(relay_position(container))
    finally:
        writer.stopping.set()
        writer.join(30)
    assert kills >= 5 and writer.appended > 100, (kills, writer.appended)
    assert all(b > a for a, b in itertools.pairwise(positions)), positions
    relay = start_relay_process(container)
    head = container.reader().head()
    wait_for(lambda: relay_position(container) >= head, 60, "the relay to catch up")
    relay.send_signal(signal.SIGTERM)
    assert relay.wait(20) == 0

    topic = topic_log(container)
    assert topic.deduplicated() == stored_log(container)
    assert len(topic.records) >= len(stored_log(container))


def test_broker_lost_then_republish_restores_exactly_the_store(
    container: Container, broker: BrokerHandle,
) -> None:
    scenarios(container, 2)
    thread, relay = run_relay_thread(container)
    head = container.reader().head()
    wait_for(lambda: relay_position(container) == head, 30, "the relay to reach the head")
    relay.stop()  # type: ignore[attr-defined]
    thread.join(10)

    broker.restart_empty([container.settings.events_topic])
    container.ensure_topics()
    assert topic_log(container).records == []

    settings = container.settings
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": container.bootstrap_servers,
           "CARTOLOG_TOPIC_PREFIX": settings.topic_prefix}
    done = subprocess.run([sys.executable, "-m", "infra.cli", "log", "republish"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    stored = stored_log(container)
    assert f"republished {len(stored)} events" in done.stdout
    assert topic_log(container).exact() == sorted((a, v, h) for (a, v), h in stored.items())


def test_relay_survives_a_broker_restart(container: Container, broker: BrokerHandle) -> None:
    ids = scenarios(container, 1)
    thread, relay = run_relay_thread(container)
    wait_for(lambda: relay_position(container) == container.reader().head(), 30, "catch-up")
    broker.restart_empty([container.settings.events_topic])
    container.ensure_topics()
    container.app.edit_scenario("acme", ids[0], 1, [SetZoneAttributes(1, jobs=3.0)], OPERATOR)
    head = container.reader().head()
    wait_for(lambda: relay_position(container) == head, 60, "the relay to publish after restart")
    relay.stop()  # type: ignore[attr-defined]
    thread.join(10)
    keys = {(d["aggregate_id"], d["aggregate_version"]) for d in topic_log(container).documents}
    assert (str(ids[0]), 2) in keys
