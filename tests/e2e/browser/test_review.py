"""Review of a fork in a real browser (review.mjs), against `cartolog up --demo`: propose a
merge request, refuse the author's own approval, approve and merge as another user, and see
the parent's new version and the request's trail.

Needs what `bash infra/web.sh` installs (chromium, playwright-core, web/dist); fails without.
`CARTOLOG_BROWSER_TEST_PORT` pins the API's port (default: any free one).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.browser.test_workspace import (
    HERE,
    HOST,
    SHOTS,
    demo_api,
    demo_stack,
    tail,
    wait_for_baseline,
)

FORK = "Wider link proposal"


def test_review_and_merge_in_a_browser(fresh_database_url: str, tmp_path: Path) -> None:
    with demo_stack(fresh_database_url, tmp_path) as (env, port):
        author = token(env, tmp_path, "reviewer", "ana")
        reviewer = token(env, tmp_path, "reviewer", "ben")
        api = demo_api(port, author)
        wait_for_baseline(api)
        parent = prepare_fork(api)
        report = run_browser(env, tmp_path, port, author, reviewer)
        check_report(report, api, parent)


def token(env: dict[str, str], cwd: Path, role: str, sub: str) -> str:
    out = subprocess.run([sys.executable, "-m", "infra.cli", "token", "issue", "--tenant", "demo",
                          "--role", role, "--sub", sub], cwd=cwd, env=env, capture_output=True,
                         text=True, check=True, timeout=60)
    return out.stdout.strip().splitlines()[-1]


def prepare_fork(api: httpx.Client) -> dict[str, Any]:
    """A fork of Baseline with one edit; returns Baseline as it is before the merge."""
    items = api.get("/v1/scenarios").json()["items"]
    baseline = next(s for s in items if s["name"] == "Baseline")
    fork = api.post("/v1/scenarios", json={"name": FORK, "fork_of": baseline["id"]}).json()
    edit = {"edits": [{"op": "modify_link", "link_id": "1", "capacity": 99999.0}]}
    edited = api.post(f"/v1/scenarios/{fork['id']}/edits", json=edit, headers={"If-Match": '"1"'})
    assert edited.status_code == 200, edited.text
    parent: dict[str, Any] = api.get(f"/v1/scenarios/{baseline['id']}").json()
    return parent


def run_browser(env: dict[str, str], tmp_path: Path, port: int, author: str,
                reviewer: str) -> dict[str, Any]:
    (tmp_path / "profile").mkdir()
    (tmp_path / "failures").mkdir()
    SHOTS.mkdir(parents=True, exist_ok=True)
    report_file = tmp_path / "report.json"
    node_env = {**env, "BASE_URL": f"http://{HOST}:{port}/", "AUTHOR_TOKEN": author,
                "REVIEWER_TOKEN": reviewer, "FORK": FORK, "PARENT": "Baseline",
                "SHOTS": str(SHOTS), "REPORT": str(report_file),
                "PROFILE": str(tmp_path / "profile"), "FAILURES": str(tmp_path / "failures")}
    result = subprocess.run(["node", "review.mjs"], cwd=HERE, env=node_env,
                            capture_output=True, text=True, timeout=240)
    report: dict[str, Any] = (json.loads(report_file.read_text())
                              if report_file.exists() else {})
    assert result.returncode == 0, (
        f"browser script failed (screenshots in {tmp_path / 'failures'}):\n{result.stdout}\n"
        f"{result.stderr}\nreport: {json.dumps(report, indent=1)[:4000]}\n"
        f"stack log tail:\n{tail(tmp_path / 'up.log')}")
    return report


def check_report(report: dict[str, Any], api: httpx.Client, parent: dict[str, Any]) -> None:
    assert report["edits_listed"] == 1
    assert "cannot review" in report["self_approval_error"]
    request = api.get(f"/v1/merge-requests/{report['merge_request']}").json()
    assert request["status"] == "merged" and request["author"] == "ana"
    assert [r["reviewer"] for r in request["reviews"]] == ["ben"]
    merged = api.get(f"/v1/scenarios/{parent['id']}").json()
    assert merged["link_changes"]["1"] == {"capacity": 99999.0}
    assert report["shown_scenario"] == "Baseline"
    assert report["parent_version_before"] == parent["version"]
    assert report["parent_version_after"] == merged["version"] == request["merged_version"]
    assert report["trail"] == ["Opened", "Reviewed", "Merged"]
    assert f"version {merged['version']}" in report["status"]
