"""The relay and an event it cannot publish: it says so, names the position, drops nothing."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from kafka import KafkaProducer

from adapters import relay
from adapters.relay import Publisher, RecordTooLarge, Relay
from domain.application import Cartolog
from tests.unit.fakes import InMemoryBlobStore
from tests.unit.test_domain import ME


def never_a_producer() -> KafkaProducer:
    raise AssertionError("an oversized batch must not reach the producer")


class OneBatch:
    """A notification log holding one batch."""

    def __init__(self, batch: list[Any]) -> None:
        self.batch = batch

    def after(self, position: int, limit: int, stop: int | None = None) -> list[Any]:
        return [n for n in self.batch if n.id > position][:limit]


class Positions:
    def __init__(self) -> None:
        self.saved: list[int] = []

    def load(self) -> int:
        return 0

    def save(self, position: int) -> None:
        self.saved.append(position)


def test_an_event_over_the_producer_limit_stalls_the_relay_loudly_and_is_kept(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    app = Cartolog({"PERSISTENCE_MODULE": "eventsourcing.popo"}, blobs=InMemoryBlobStore())
    app.register_tenant("acme", ME, display_name="x" * 200)
    notifications = list(app.recorder.select_notifications(start=1, limit=10))
    monkeypatch.setattr(relay, "MAX_REQUEST_SIZE", 1200)
    publisher = Publisher(never_a_producer, "events", app.mapper)
    with pytest.raises(RecordTooLarge, match="event at position 1 is"):
        publisher.publish(notifications)
    positions = Positions()
    loop = Relay(OneBatch(notifications), publisher, positions, "events")  # type: ignore[arg-type]
    loop.stopping = threading.Event()
    loop.stopping.set()  # no 1 s back-off in the test
    with caplog.at_level(logging.WARNING, logger="adapters.relay"):
        assert loop._step(0, listener=None) == 0
    assert positions.saved == []
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "relay stalled after position 0" in caplog.text
    assert "event at position 1" in caplog.text
    app.close()


def test_the_relay_reports_an_error_after_repeated_failures_at_one_position(
        caplog: pytest.LogCaptureFixture) -> None:
    class Refusing(Publisher):
        def publish(self, notifications: list[Any]) -> None:
            raise relay.PublishFailed("broker down")

    batch = [type("N", (), {"id": 7})()]
    loop = Relay(OneBatch(batch), Refusing(never_a_producer, "t", None),  # type: ignore[arg-type]
                 Positions(), "events")  # type: ignore[arg-type]
    loop.stopping.set()
    with caplog.at_level(logging.WARNING, logger="adapters.relay"):
        for _ in range(relay.STALLED_AFTER):
            loop._step(0, listener=None)
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING] * (relay.STALLED_AFTER - 1) + [logging.ERROR]
    assert "relay stalled after position 0 (10 failed attempts" in caplog.records[-1].getMessage()
