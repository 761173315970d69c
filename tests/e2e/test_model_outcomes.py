"""How the assignment ended travels with the run: a stalled run says so through the API."""

from __future__ import annotations

import re

from infra.wiring import Container
from tests.e2e.test_api_flow import wait_completed, whole_pipeline
from tests.integration.api.conftest import SIOUX_FALLS, Api, api  # noqa: F401
from tests.integration.conftest import container  # noqa: F401


def test_a_stalled_run_reports_stalled_through_the_api(api: Api,  # noqa: F811
                                                       container: Container  # noqa: F811
                                                       ) -> None:
    files = {kind: (SIOUX_FALLS / f"SiouxFalls_{kind}.tntp").read_text()
             for kind in ("net", "trips", "node")}
    # Frank-Wolfe asked for gap 1e-8: its gap halves ever more slowly, so it stalls.
    parameters = {"algorithm": "fw", "gap": 1e-8, "max_iterations": 5000, "reuse": False}
    with whole_pipeline(container):
        dataset = api.post("/v1/datasets", {"format": "tntp", "name": "stall", **files})
        assert dataset.status_code == 201, dataset.text
        scenario = api.scenario(dataset=dataset.json()["id"])
        created = api.post(f"/v1/scenarios/{scenario}/simulations",
                           {"model": "builtin", "parameters": parameters})
        assert created.status_code == 202, created.text
        run = wait_completed(api, created.json()["id"], timeout=300)
    found = re.fullmatch(r"stalled at gap (\S+) after (\d+) iterations", run["status_detail"])
    assert found is not None, run["status_detail"]
    indicators = run["indicators"]
    assert indicators["converged"] == 0 and indicators["stalled"] == 1
    assert indicators["fallback_bfw"] == 0
    assert int(found.group(2)) == indicators["iterations"] < 5000
    assert float(found.group(1)) == float(f"{indicators['relative_gap']:.2e}") > 1e-8
    listed = api.get(f"/v1/simulations/{run['id']}/indicators").json()["indicators"]
    assert {row["name"]: row["value"] for row in listed}["stalled"] == 1
