"""Replays from the store: the direct decoder equals the envelope path, and pipelined
batches give the live read model whatever the batch size."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from adapters.projector.rebuild import Rebuild, RebuildRunning
from adapters.store_replay import StoredEventDecoder
from infra import projections_wiring as wiring
from infra.wiring import Container
from projections.read_model import ReadModel
from projections.registry import BUILT_IN
from tests.integration.conftest import OPERATOR
from tests.integration.projections.conftest import (
    Workload,
    checksums,
    differences,
    dumps,
    relay_and_projector,
    wait_caught_up,
)

# Every command kind: imports, scenarios, each edit, forks, runs that complete or fail.
SCRIPT = [(0, 0, 0, 1.0), (1, 0, 1, 2.0), (2, 0, 0, 3.5), (2, 0, 1, 4.0), (2, 0, 2, 5.0),
          (2, 0, 3, 6.0), (2, 0, 4, 7.0), (3, 0, 0, 8.0), (4, 0, 1, 9.25), (5, 0, 0, 10.0),
          (0, 1, 3, 11.0), (1, 1, 0, 12.0), (4, 1, 0, 13.0), (2, 1, 4, 14.0), (4, 0, 2, 15.0),
          (5, 1, 1, 16.0), (2, 0, 13, 17.0), (4, 1, 1, 18.5)]


def stored_rows(container: Container) -> list[tuple[Any, ...]]:
    with container.engine.connect() as connection:
        raw: Any = connection.connection
        with raw.cursor() as cursor:
            cursor.execute(f"SELECT id, originator_id, originator_version, topic, state "
                           f"FROM {container.reader().table} ORDER BY id")
            return list(cursor.fetchall())


def test_direct_decoding_equals_the_envelope_on_the_topic(own_container: Container) -> None:
    container = own_container
    driver = Workload(container, ("acme", "rival"))
    for step in SCRIPT:
        driver.do(*step)
    run = container.app.request_simulation("acme", driver.scenarios["acme"][0], "builtin",
                                           {"gap": 1e-4, "nested": {"b": [1, 2.5], "a": None}},
                                           OPERATOR)
    container.app.cancel_run("acme", run, "not needed", OPERATOR)
    container.app.register_bi_target("acme", "dash", "builtin", OPERATOR)

    decoder = StoredEventDecoder(container.app.mapper)
    rows = stored_rows(container)
    types = set()
    for position, originator_id, version, topic, state in rows:
        direct = decoder.decode(position, originator_id, version, topic, bytes(state))
        # _slow is exactly what the relay publishes: encode(envelope(...)) parsed again.
        assert direct == decoder._slow(position, originator_id, version, topic, bytes(state))
        types.add(direct.type)
    assert {"Dataset.Imported", "Scenario.Forked", "Scenario.LinkAdded",
            "Scenario.DemandParametersChanged", "SimulationRun.Completed",
            "SimulationRun.AttemptFailed", "SimulationRun.Cancelled"} <= types


def test_an_event_stored_before_an_upcast_takes_the_mapper_path(
        own_container: Container) -> None:
    container = own_container
    driver = Workload(container, ("acme",))
    for step in SCRIPT[:3]:
        driver.do(*step)
    scenario = driver.scenarios["acme"][0]
    with container.engine.begin() as connection:  # as a v1 event was stored, long ago
        raw: Any = connection.connection
        with raw.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {container.reader().table} (originator_id, originator_version, "
                "topic, state) SELECT originator_id, max(originator_version) + 1, "
                "'domain.scenario:Scenario.DemandParametersChanged', convert_to("
                "'{\"timestamp\":{\"_type_\":\"datetime_iso\",\"_data_\":"
                "\"2026-01-02T03:04:05+00:00\"},\"tenant_id\":\"acme\",\"actor\":\"x\","
                "\"correlation_id\":\"c\",\"trip_rate\":2.0,\"beta\":0.1}', 'UTF8') "
                f"FROM {container.reader().table} WHERE originator_id = %s "
                "GROUP BY originator_id", (str(scenario),))
    decoder = StoredEventDecoder(container.app.mapper)
    position, originator_id, version, topic, state = stored_rows(container)[-1]
    event = decoder.decode(position, originator_id, version, topic, bytes(state))
    assert event.payload == {"trip_rate": 2.0, "beta": 0.1, "deterrence": "exponential"}
    assert event == decoder._slow(position, originator_id, version, topic, bytes(state))


def test_pipelined_store_replays_equal_the_live_read_model_at_any_batch_size(
        own_container: Container) -> None:
    container = own_container
    driver = Workload(container, ("acme", "rival"))
    with relay_and_projector(container):
        for step in SCRIPT:
            driver.do(*step)
        wait_caught_up(container)
        live, live_rows = checksums(container), dumps(container)
        # Batches of 1 and 2 put every Completed in a later batch than its run's row, and
        # every edit in a later batch than its scenario's: the view reads across batches.
        for batch in (1, 2, 7):
            for cls in BUILT_IN:
                applied, used = wiring.rebuild(container, cls.name, "auto", batch=batch)
                assert used == "store" and applied == container.reader().head()
            assert checksums(container) == live, differences(live_rows, dumps(container))
        driver.do(2, 0, 7, 42.0)  # the live projector carries on after the swaps
        wait_caught_up(container)


def test_a_second_rebuild_of_the_same_projection_is_refused_and_changes_nothing(
        own_container: Container) -> None:
    container = own_container
    driver = Workload(container, ("acme",))
    with relay_and_projector(container):
        for step in SCRIPT[:6]:
            driver.do(*step)
        wait_caught_up(container)
        live = checksums(container)
    job = Rebuild(container.engine, ReadModel(wiring.context(container)),
                  wiring._ddl(ReadModel(wiring.context(container))))
    with job.exclusive():  # as a rebuild running in another process would
        job.prepare()
        with pytest.raises(RebuildRunning, match="already running"):
            wiring.rebuild(container, "read_model")
        with container.engine.connect() as connection:  # the running one's schema survives
            assert connection.execute(text(
                "SELECT count(*) FROM information_schema.schemata "
                "WHERE schema_name = :s"), {"s": job.schema}).scalar_one() == 1
        job.discard()
    assert checksums(container) == live
    applied, used = wiring.rebuild(container, "read_model")  # the lock was released
    assert used == "store" and applied == container.reader().head()
    assert checksums(container) == live
