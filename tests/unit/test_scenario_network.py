"""A scenario's effective network follows the worker's edit rules."""

from __future__ import annotations

from domain.scenario_network import effective_network
from tests.unit.test_domain import tiny_network


def test_edits_apply_as_the_worker_applies_them() -> None:
    base = tiny_network()
    edited = effective_network(base, {
        "link_changes": {"a": {"lanes": 2.0, "capacity": 1500.0},
                         "b": {"lanes": 3.0, "speed": 30.0}},
        "closed_links": ["c"],
        "added_links": {"d": {"id": "d", "from_node": 3, "to_node": 1, "capacity": 800.0,
                              "length": 1.0, "free_flow_time": 2.0, "geometry": [[0, 0]]}},
        "zone_attributes": {"2": {"jobs": 5.0}},
        "demand": {"trip_rate": 2.0},
    })
    links = {link.id: link for link in edited.links}
    assert sorted(links) == ["a", "b", "d"]
    assert (links["a"].lanes, links["a"].capacity) == (2.0, 1500.0)
    assert (links["b"].lanes, links["b"].capacity) == (3.0, 3000.0)
    assert links["b"].free_flow_time == 2.0 and links["d"].geometry == ((0, 0),)
    assert [(z.population, z.jobs) for z in edited.zones] == [(100.0, 10.0), (20.0, 5.0)]
    assert edited.nodes == base.nodes and effective_network(base, {}) == base
