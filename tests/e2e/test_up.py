"""`cartolog up --demo` (what `make up` runs) brings the stack up and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from infra.broker import free_port
from tests.conftest import REPO


def test_up_reports_ready_and_stops_on_ctrl_c(fresh_database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(DATABASE_URL=fresh_database_url, CARTOLOG_API_PORT=str(port),
               PYTHONPATH=str(REPO))
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen([sys.executable, "-m", "infra.cli", "up", "--demo"], cwd=tmp_path,
                          env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        body = wait_ready(f"http://127.0.0.1:{port}/readyz", up, timeout=120)
        assert body["checks"] == {"database": "ready", "broker": "ready", "projector": "ready",
                                  "processes": "ready"}
        lines = (tmp_path / "up.log").read_text().splitlines()
        broker_port = int(next(line for line in lines
                               if line.strip().startswith("broker ")).rsplit(":", 1)[1])
        # The printed demo token works on the demo tenant's subdomain.
        token = lines[next(i for i, line in enumerate(lines) if "token" in line) + 1].strip()
        headers = {"Authorization": f"Bearer {token}", "Host": "demo.cartolog.example"}
        deadline = time.monotonic() + 90  # the projector catches up with the demo import
        names: list[str] = []
        while names != ["Baseline"] and time.monotonic() < deadline:
            listed = httpx.get(f"http://127.0.0.1:{port}/v1/scenarios", headers=headers,
                               timeout=10)
            assert listed.status_code == 200, listed.text
            names = [s["name"] for s in listed.json()["items"]]
            time.sleep(0.5)
        assert names == ["Baseline"]
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
    output = (tmp_path / "up.log").read_text()
    assert code == 0, output
    assert "Cartolog is up" in output
    with socket.socket() as probe:  # the broker it started is gone too
        assert probe.connect_ex(("127.0.0.1", broker_port)) != 0


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "cartolog up exited early"
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                body: dict[str, object] = response.json()
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready after {timeout}s")
