"""A planner's outputs in a real browser (planner.mjs), against `cartolog up --demo`: a fork
of the Sioux Falls Baseline with cars and trucks from an uploaded OMX is simulated, the map
is coloured by trucks, the truck skims are downloaded and read back in openmatrix, and a
select-link analysis of a clicked link is drawn as a layer. Every figure the page shows is
checked against the API.

Needs what `bash infra/web.sh` installs (chromium, playwright-core, web/dist); fails without.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openmatrix as omx
import pytest

from adapters.demand_matrix import DemandMatrix, write_omx
from tests.e2e.browser.test_workspace import (
    HERE,
    HOST,
    SHOTS,
    demo_api,
    demo_stack,
    issue_token,
    tail,
    wait_for_baseline,
)

SCENARIO = "Cars and trucks"
LINK = "1"


def test_classes_skims_and_select_link_in_a_browser(fresh_database_url: str,
                                                    tmp_path: Path) -> None:
    with demo_stack(fresh_database_url, tmp_path) as (env, port):
        editor = issue_token(env, tmp_path, "demo", "editor")
        api = demo_api(port, editor)
        wait_for_baseline(api)
        prepare(api)
        report = run_browser(env, tmp_path, port, editor)
        check_report(report, api)


def prepare(api: httpx.Client) -> None:
    """A fork of Baseline with two classes and an OMX matrix of both."""
    items = api.get("/v1/scenarios").json()["items"]
    baseline = next(s for s in items if s["name"] == "Baseline")
    fork = api.post("/v1/scenarios", json={"name": SCENARIO, "fork_of": baseline["id"]}).json()
    classes = {"classes": [{"name": "car"}, {"name": "truck", "pce": 2.5}]}
    declared = api.put(f"/v1/scenarios/{fork['id']}/vehicle-classes", json=classes,
                       headers={"If-Match": '"1"'})
    assert declared.status_code == 200, declared.text
    rng = np.random.default_rng(3)
    car = rng.integers(10, 150, size=(24, 24)).astype(float)
    np.fill_diagonal(car, 0.0)
    matrix = DemandMatrix(list(range(1, 25)), {"car": car, "truck": np.round(car / 8)})
    uploaded = api.post(f"/v1/scenarios/{fork['id']}/demand?format=omx", content=write_omx(matrix),
                        headers={"If-Match": '"2"', "Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 200, uploaded.text


def run_browser(env: dict[str, str], tmp_path: Path, port: int, editor: str) -> dict[str, Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for folder in ("profile", "failures", "downloads"):
        (tmp_path / folder).mkdir()
    report_file = tmp_path / "report.json"
    node_env = {**env, "BASE_URL": f"http://{HOST}:{port}/", "EDITOR_TOKEN": editor,
                "SCENARIO": SCENARIO, "LINK": LINK, "SHOTS": str(SHOTS),
                "REPORT": str(report_file), "PROFILE": str(tmp_path / "profile"),
                "FAILURES": str(tmp_path / "failures"),
                "DOWNLOADS": str(tmp_path / "downloads")}
    result = subprocess.run(["node", "planner.mjs"], cwd=HERE, env=node_env,
                            capture_output=True, text=True, timeout=420)
    report: dict[str, Any] = (json.loads(report_file.read_text())
                              if report_file.exists() else {})
    assert result.returncode == 0, (
        f"browser script failed (screenshots in {tmp_path / 'failures'}):\n{result.stdout}\n"
        f"{result.stderr}\nreport: {json.dumps(report, indent=1)[:4000]}\n"
        f"stack log tail:\n{tail(tmp_path / 'up.log')}")
    return report


def check_report(report: dict[str, Any], api: httpx.Client) -> None:
    run = report["run"]
    assert report["classes"] == ["", "car", "truck"]
    by_class = api.get(f"/v1/simulations/{run}/class-flows").json()["flows"]
    assert report["truck_flow"] == pytest.approx(by_class["truck"][LINK], rel=1e-9)
    assert "truck" in report["legend"]
    handle = omx.open_file(report["skims_file"], "r")
    try:
        assert sorted(handle.list_matrices()) == ["truck_cost", "truck_distance", "truck_time"]
        assert handle.mapping("zone") == {zone: i for i, zone in enumerate(range(1, 25))}
        assert float(np.array(handle["truck_time"])[0, 1]) > 0
    finally:
        handle.close()
    assert report["select_link_status"] == "done", report.get("select_link_text")
    analysis_run = report["select_link_run"]
    assert analysis_run != run
    analysis = api.get(f"/v1/simulations/{analysis_run}/select-link/link-{LINK}").json()
    total = sum(c["total_trips"] for c in analysis["classes"].values())
    assert total > 0 and report["select_link_total"] == pytest.approx(total, rel=1e-9)
    layer = api.get(f"/v1/simulations/{analysis_run}/select-link/link-{LINK}/links").json()
    assert report["select_link_features"] == len(layer["features"]) > 1
    assert report["console_errors"] == []
