"""A real GIS client reads the OGC API: GDAL's OAPIF driver (`ogrinfo`) against a running
server over the real pipeline lists a tenant's collections and pages through every link
result of a run; another tenant's token reads nothing."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from infra.settings import Settings
from infra.wiring import Container, build
from tests.e2e.live import LiveApi, live_server
from tests.e2e.test_api_flow import whole_pipeline
from tests.integration.api.conftest import SIOUX_FALLS
from tests.integration.conftest import OPERATOR


@pytest.fixture()
def localhost_container(settings: Settings) -> Iterator[Container]:
    """Tenants on *.localhost, which libcurl (inside GDAL) resolves by itself."""
    built = build(settings.model_copy(update={"base_domain": "localhost"}))
    for tenant in ("acme", "rival"):
        built.app.register_tenant(tenant, OPERATOR)
    yield built
    built.close()


def ogrinfo(live: LiveApi, tenant: str, token_of: str, *args: str
            ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ,
           "GDAL_HTTP_HEADERS": f"Authorization: Bearer {live.token(token_of, 'viewer')}"}
    return subprocess.run(["ogrinfo", "-ro", f"OAPIF:{live.url(tenant, '/ogc/')}", *args],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def completed_run(live: LiveApi) -> tuple[str, str]:
    files = {kind: (SIOUX_FALLS / f"SiouxFalls_{kind}.tntp").read_text()
             for kind in ("net", "trips", "node")}
    dataset = live.request("POST", "acme", "/v1/datasets",
                           json={"format": "tntp", "name": "Sioux Falls", **files})
    assert dataset.status_code == 201, dataset.text
    scenario = live.request("POST", "acme", "/v1/scenarios",
                            json={"name": "base", "dataset_id": dataset.json()["id"]})
    assert scenario.status_code == 201, scenario.text
    scenario_id = scenario.json()["id"]
    run = live.request("POST", "acme", f"/v1/scenarios/{scenario_id}/simulations",
                       json={"model": "builtin", "parameters": {"gap": 1e-3}})
    assert run.status_code == 202, run.text
    return scenario_id, str(run.json()["id"])


def wait_for_collection(live: LiveApi, collection: str, timeout: float = 180) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        listed = live.request("GET", "acme", "/ogc/collections")
        assert listed.status_code == 200, listed.text
        collections = listed.json()["collections"]
        if collection in [c["id"] for c in collections]:
            return list(collections)
        assert time.monotonic() < deadline, collections
        time.sleep(0.5)


def features(output: str) -> dict[str, float]:
    """link_id -> flow of every feature ogrinfo printed."""
    blocks = output.split("OGRFeature(")[1:]
    found = {}
    for block in blocks:
        link = re.search(r"^\s+link_id \(String\) = (\S+)$", block, re.M)
        flow = re.search(r"^\s+flow \(Real\) = (\S+)$", block, re.M)
        assert link and flow, block
        found[link.group(1)] = float(flow.group(1))
    return found


def test_ogrinfo_lists_collections_and_pages_through_a_run(
        localhost_container: Container) -> None:
    with whole_pipeline(localhost_container), live_server(localhost_container) as port:
        live = LiveApi(localhost_container, port)
        scenario, run = completed_run(live)
        layer = f"run-{run}-links"
        wait_for_collection(live, layer)
        listed = ogrinfo(live, "acme", "acme", "-so")
        assert listed.returncode == 0, listed.stderr
        for name in (f"scenario-{scenario}-links", f"scenario-{scenario}-zones", layer,
                     f"run-{run}-zones"):
            assert name in listed.stdout
        paged = ogrinfo(live, "acme", "acme", "-oo", "PAGE_SIZE=10", layer)
        assert paged.returncode == 0, paged.stderr
        read = features(paged.stdout)
        expected = live.request("GET", "acme", f"/v1/simulations/{run}/links").json()
        flows = {f["properties"]["link_id"]: f["properties"]["flow"]
                 for f in expected["features"]}
        assert len(flows) == 76 and read.keys() == flows.keys()
        assert all(abs(read[k] - flows[k]) <= 1e-6 * max(1.0, flows[k]) for k in flows)
        check_other_tenant(live, layer)


def check_other_tenant(live: LiveApi, layer: str) -> None:
    stolen = ogrinfo(live, "acme", "rival", "-oo", "PAGE_SIZE=10", layer)
    assert stolen.returncode != 0 and "OGRFeature" not in stolen.stdout
    own = ogrinfo(live, "rival", "rival", "-so")
    assert own.returncode != 0 and layer not in own.stdout
    assert live.request("GET", "rival", "/ogc/collections").json()["collections"] == []
    direct = live.request("GET", "rival", f"/ogc/collections/{layer}/items")
    assert direct.status_code == 404
