"""A v1 event stored long ago is read as the current version of its class."""

from __future__ import annotations

import datetime as dt

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.application import Cartolog
from domain.scenario import Scenario
from tests.unit.fakes import InMemoryBlobStore
from tests.unit.test_domain import ME, tiny_network


def v1_demand_event(app: Cartolog, scenario_id: object) -> StoredEvent:
    """What version 1 of DemandParametersChanged wrote: no `deterrence`, no class_version."""
    state = {
        "originator_id": scenario_id, "originator_version": 2,
        "timestamp": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "tenant_id": "acme", "actor": "old-client", "correlation_id": "c-1",
        "trip_rate": 2.0, "beta": 0.05,
    }
    return StoredEvent(
        originator_id=scenario_id, originator_version=2,
        topic=get_topic(Scenario.DemandParametersChanged),
        state=app.mapper.transcoder.encode(state),
    )


def test_v1_demand_event_is_upcast_to_v2() -> None:
    app = Cartolog({"PERSISTENCE_MODULE": "eventsourcing.popo"}, blobs=InMemoryBlobStore())
    app.register_tenant("acme", ME)
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    scenario_id = app.create_scenario("acme", dataset, "base", ME)
    app.recorder.insert_events([v1_demand_event(app, scenario_id)])

    event = list(app.events.get(scenario_id))[1]
    assert isinstance(event, Scenario.DemandParametersChanged)
    assert (event.trip_rate, event.beta, event.deterrence) == (2.0, 0.05, "exponential")
    assert app.get_scenario("acme", scenario_id).demand == {
        "trip_rate": 2.0, "deterrence": "exponential", "beta": 0.05}
    assert Scenario.DemandParametersChanged.class_version == 2
