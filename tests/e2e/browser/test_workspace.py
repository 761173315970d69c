"""The map workspace end to end in a real browser: Debian's chromium, driven by playwright-core
(workspace.mjs), against `cartolog up --demo` with the Sioux Falls demo tenant.

`bash infra/web.sh` (run by `make test`) builds web/dist and installs chromium and
playwright-core; without them this test fails and says so rather than skipping.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest

from infra.broker import free_port
from tests.conftest import REPO
from tests.e2e.test_up import wait_ready
from tests.integration.gis.files import sioux_falls_corner

HERE = Path(__file__).parent
# Screenshots go to a build folder; `make screenshots` points this at docs/screenshots.
SHOTS = Path(os.environ.get("CARTOLOG_SCREENSHOTS_DIR") or REPO / "build" / "screenshots")
CHROMIUM = Path("/usr/bin/chromium")
HOST = "demo.localhost"  # Chromium resolves *.localhost to 127.0.0.1 itself


def test_workspace_in_a_browser(fresh_database_url: str, tmp_path: Path) -> None:
    with demo_stack(fresh_database_url, tmp_path) as (env, port):
        editor = issue_token(env, tmp_path, "demo", "editor")
        api = demo_api(port, editor)
        link_count = wait_for_baseline(api)
        corner_links = sioux_falls_corner(tmp_path / "corner-gmns.zip")[1]
        report = run_browser(env, tmp_path, port, editor,
                             issue_token(env, tmp_path, "elsewhere", "editor"))
        check_report(report, api, link_count)
        check_files(report, tmp_path, port, link_count, corner_links)


@contextlib.contextmanager
def demo_stack(database_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], int]]:
    """`cartolog up --demo` on `database_url` and a free port (or CARTOLOG_BROWSER_TEST_PORT),
    ready to serve; yields its environment and port, and stops it at the end. The browser
    tools must be installed (fails, never skips)."""
    require_browser_tools()
    port = int(os.environ.get("CARTOLOG_BROWSER_TEST_PORT") or free_port())
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(DATABASE_URL=database_url, CARTOLOG_API_PORT=str(port),
               CARTOLOG_BASE_DOMAIN="localhost", PYTHONPATH=str(REPO))
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen([sys.executable, "-m", "infra.cli", "up", "--demo"], cwd=tmp_path,
                          env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", up, timeout=120)
        yield env, port
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)


def demo_api(port: int, token: str) -> httpx.Client:
    """httpx against the demo tenant of the running stack, with `token`."""
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                        headers={"Host": f"{HOST}:{port}", "Authorization": f"Bearer {token}"})


def require_browser_tools() -> None:
    missing = [name for name, present in (
        ("/usr/bin/chromium", CHROMIUM.exists()), ("node", bool(shutil.which("node"))),
        ("playwright-core", (HERE / "node_modules" / "playwright-core").is_dir()),
        ("web/dist", (REPO / "web" / "dist" / "index.html").is_file())) if not present]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `bash infra/web.sh` (make test does)")


def issue_token(env: dict[str, str], cwd: Path, tenant: str, role: str) -> str:
    out = subprocess.run([sys.executable, "-m", "infra.cli", "token", "issue", "--tenant", tenant,
                          "--role", role], cwd=cwd, env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    return out.stdout.strip().splitlines()[-1]


def wait_for_baseline(api: httpx.Client, timeout: float = 60) -> int:
    """The demo's Baseline is in the read model; returns its dataset's link count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = api.get("/v1/scenarios").json().get("items", [])
        baseline = next((s for s in items if s["name"] == "Baseline"), None)
        if baseline:
            return int(api.get(f"/v1/datasets/{baseline['dataset_id']}").json()["link_count"])
        time.sleep(0.5)
    raise AssertionError("the demo tenant's Baseline scenario never appeared")


def run_browser(env: dict[str, str], tmp_path: Path, port: int, editor: str,
                stranger: str) -> dict[str, Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    (tmp_path / "profile").mkdir()
    (tmp_path / "failures").mkdir()
    report_file = tmp_path / "report.json"
    node_env = {**env, "BASE_URL": f"http://{HOST}:{port}/", "EDITOR_TOKEN": editor,
                "OTHER_TOKEN": stranger, "SHOTS": str(SHOTS), "REPORT": str(report_file),
                "PROFILE": str(tmp_path / "profile"), "FAILURES": str(tmp_path / "failures"),
                "IMPORT_FILE": str(tmp_path / "corner-gmns.zip"),
                "DOWNLOADS": str(tmp_path)}
    result = subprocess.run(["node", "workspace.mjs"], cwd=HERE, env=node_env,
                            capture_output=True, text=True, timeout=360)
    report: dict[str, Any] = (json.loads(report_file.read_text())
                              if report_file.exists() else {})
    assert result.returncode == 0, (
        f"browser script failed (screenshots in {tmp_path / 'failures'}):\n{result.stdout}\n"
        f"{result.stderr}\nreport: {json.dumps(report, indent=1)[:4000]}\n"
        f"stack log tail:\n{tail(tmp_path / 'up.log')}")
    return report


def check_report(report: dict[str, Any], api: httpx.Client, link_count: int) -> None:
    # Signed in with a dev token, and every link of Sioux Falls drawn from /v1/tiles.
    assert report["links_drawn"] == link_count
    assert set(report["tile_statuses"]) <= {200, 304}
    assert report["baseline_legend"] == "Flow (veh/h)"
    # The loaded link was loaded, and is closed in the fork: zero flow in B.
    assert number(report["loaded_link_baseline_flow"]) > 0
    assert number(report["closed_link_flow_b"]) == 0
    assert number(report["closed_link_flow_a"]) > 0
    assert report["comparison_legend"].startswith("Flow change")
    # The indicator panel shows exactly the deltas the API returns.
    comparison = api.get("/v1/compare", params={"a": report["baseline_run"],
                                                "b": report["fork_run"]}).json()
    shown = {row["name"]: row for row in report["ui_deltas"]}
    assert comparison["indicators"], "the API returned no indicators to compare"
    assert set(shown) == {i["name"] for i in comparison["indicators"]}
    for indicator in comparison["indicators"]:
        row = shown[indicator["name"]]
        for key in ("value_a", "value_b", "difference"):
            assert same(row[key], indicator[key]), (indicator["name"], key, row, indicator)
    closed = next(k for k in comparison["links"] if k["link_id"] == report["loaded_link"])
    assert (closed["flow_b"] or 0) == 0
    # Why: the closure, and the OD pairs whose trips via the closed link were lost.
    assert report["why_subjects"] == [f"link:{report['loaded_link']}"]
    why = api.get("/v1/compare/explain", params={
        "a": report["baseline_run"], "b": report["fork_run"], "link": report["loaded_link"]}).json()
    assert why["od_pairs"] and report["why_pairs"] == [
        f"{p['origin']}-{p['destination']}" for p in why["od_pairs"]]
    assert all(p["flow_b"] == 0 < p["flow_a"] for p in why["od_pairs"])
    # A stale edit: the conflict message, and the kept edit applied on the new version.
    assert "Someone else changed" in report["conflict_message"]
    assert report["after_retry_population"] == 4321
    # 360 px wide, labelled controls, keyboard reach.
    assert report["narrow"]["scroll_width"] <= 360, report["narrow"]
    assert report["narrow"]["run_button_visible"]
    assert report["unlabelled_controls"] == []
    assert {"run-start", "Baseline"} <= set(report["keyboard_reached"]), report["keyboard_reached"]
    # Another tenant's token on demo's subdomain: "not your workspace", and no data at all.
    denied = report["denied"]
    assert denied["title"] == "Not your workspace"
    assert denied["workspace_hidden"] and denied["scenario_buttons"] == 0
    assert not denied["body_mentions_baseline"]
    assert denied["successful_api_calls"] == []
    assert denied["api_status"] in (403, 404)
    for name in ("baseline-map.png", "comparison-map.png"):
        assert (SHOTS / name).stat().st_size > 10_000, name


def check_files(report: dict[str, Any], tmp_path: Path, port: int, link_count: int,
                corner_links: int) -> None:
    """The OGC URL shown, the run GeoPackage downloaded, the GMNS file imported and drawn."""
    assert report["ogc_url"] == f"http://{HOST}:{port}/ogc/"
    assert report["download_name"].endswith(".gpkg")
    layers = dict(pyogrio.list_layers(tmp_path / "run.gpkg"))
    assert {"links", "zones", "indicators", "layer_styles"} <= set(layers)
    assert pyogrio.read_info(tmp_path / "run.gpkg", layer="links")["features"] == link_count
    assert report["imported_links_drawn"] == corner_links


def number(value: float | str | None) -> float:
    return float(str(value).replace(",", "").replace("\u2212", "-"))


def same(shown: float | None, returned: float | None) -> bool:
    if shown is None or returned is None:
        return shown is None and returned is None
    return math.isclose(shown, returned, rel_tol=1e-12, abs_tol=1e-12)


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
