"""Demand between zones no path joins (decision 0147), through the API: the run fails naming
the zones and the way out, or with `unreachable_demand: "drop"` completes and reports what it
left out."""

from __future__ import annotations

import time
from typing import Any

from api.tntp_import import network_from_tntp_folder
from infra.wiring import Container
from tests.e2e.test_api_flow import wait_completed, whole_pipeline
from tests.integration.api.conftest import SIOUX_FALLS, Api, api  # noqa: F401
from tests.integration.conftest import container  # noqa: F401

# Sioux Falls' links 3 (2->1) and 5 (3->1) are the only ways into node 1: closed, zone 1
# can be left but not reached.
INTO_ZONE_1 = ("3", "5")


def run(api: Api, scenario: str, parameters: dict[str, Any]) -> str:  # noqa: F811
    created = api.post(f"/v1/scenarios/{scenario}/simulations",
                       {"model": "builtin", "parameters": {"reuse": False, **parameters}})
    assert created.status_code == 202, created.text
    return str(created.json()["id"])


def wait_ended(api: Api, run_id: str, timeout: float = 120) -> dict[str, Any]:  # noqa: F811
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = api.get(f"/v1/simulations/{run_id}").json()
        if found["status"] in ("completed", "dead_lettered") and found["finished_at"]:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.3)


def test_demand_to_a_cut_off_zone_is_refused_or_dropped_and_reported(
        api: Api, container: Container) -> None:  # noqa: F811
    files = {kind: (SIOUX_FALLS / f"SiouxFalls_{kind}.tntp").read_text()
             for kind in ("net", "trips", "node")}
    matrix = network_from_tntp_folder(SIOUX_FALLS).od_matrix
    to_zone_1 = sum(t for o, d, t in matrix if d == 1 and o != 1)
    total = sum(t for _, _, t in matrix)
    with whole_pipeline(container):
        dataset = api.post("/v1/datasets", {"format": "tntp", "name": "cut", **files})
        assert dataset.status_code == 201, dataset.text
        scenario = api.scenario(dataset=dataset.json()["id"])
        edits = {"edits": [{"op": "close_link", "link_id": link} for link in INTO_ZONE_1]}
        assert api.post(f"/v1/scenarios/{scenario}/edits", edits,
                        headers={"If-Match": '"1"'}).status_code == 200
        bad = api.post(f"/v1/scenarios/{scenario}/simulations",
                       {"model": "builtin", "parameters": {"unreachable_demand": "skip"}})
        assert bad.status_code == 422 and "unreachable_demand must be" in bad.text

        refused = wait_ended(api, run(api, scenario, {"gap": 1e-4}))
        assert refused["status"] == "dead_lettered", refused
        assert "23 OD pair(s) with" in refused["last_error"]
        assert "zones most often cut off: as destination 1 (23 pairs)" in refused["last_error"]
        assert 'run with unreachable_demand "drop"' in refused["last_error"]

        dropped = wait_completed(api, run(api, scenario, {"gap": 1e-4,
                                                          "unreachable_demand": "drop"}))
    indicators = dropped["indicators"]
    assert indicators["unassigned_pairs"] == 23
    assert abs(indicators["unassigned_trips"] - to_zone_1) < 1e-9
    assert indicators["converged"] == 1
    assert dropped["status_detail"].endswith(
        f"; {to_zone_1:.6g} trips in 23 OD pairs had no path and were not assigned")
    assert abs(indicators["total_trips"] - (total - to_zone_1)) < 1e-6  # what was assigned
