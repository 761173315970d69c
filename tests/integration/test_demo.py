"""The demo tenant: Sioux Falls imported through the domain, once."""

from __future__ import annotations

from api.tntp_import import network_from_tntp_folder
from infra.demo import DEMO_DATA, DEMO_TENANT, load_demo
from infra.wiring import Container


def test_demo_loads_sioux_falls_once(container: Container) -> None:
    load_demo(container)
    load_demo(container)  # idempotent
    tenants = [t.tenant_id for t in container.app.list_tenants()]
    assert tenants.count(DEMO_TENANT) == 1
    network = network_from_tntp_folder(DEMO_DATA)
    assert (len(network.nodes), len(network.links), len(network.zones)) == (24, 76, 24)
    assert round(sum(t for _, _, t in network.od_matrix)) == 360_600
    assert network.problems() == []
    assert all(-97 < n.x < -96 and 43 < n.y < 44 for n in network.nodes)
