"""`cartolog up --demo` (what `make up` runs) brings the stack up and stops cleanly."""

from __future__ import annotations

import json
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

READY = "Cartolog is ready (Ctrl-C stops)"


def up_environment(database_url: str, port: int) -> dict[str, str]:
    """The caller's environment for a local `up`: its own broker, database and port."""
    env = {k: v for k, v in os.environ.items()
           if k != "KAFKA_BOOTSTRAP_SERVERS" and not k.startswith("CARTOLOG_")}
    env.update(DATABASE_URL=database_url, CARTOLOG_API_PORT=str(port), PYTHONPATH=str(REPO))
    return env


def test_up_reports_ready_and_stops_on_ctrl_c(fresh_database_url: str, tmp_path: Path) -> None:
    port = free_port()
    log, errors = (tmp_path / "up.log").open("w"), (tmp_path / "up.err").open("w")
    up = subprocess.Popen([sys.executable, "-m", "infra.cli", "--log-level", "info",
                           "--log-format", "json", "up", "--demo"], cwd=tmp_path,
                          env=up_environment(fresh_database_url, port), stdout=log,
                          stderr=errors)
    try:
        body = wait_ready(f"http://127.0.0.1:{port}/readyz", up, timeout=120)
        assert body["checks"] == {"database": "ready", "broker": "ready", "projector": "ready",
                                  "processes": "ready"}
        lines = wait_for_line(tmp_path / "up.log", READY, up, timeout=30)
        broker_port = int(next(line for line in lines
                               if line.startswith("cartolog up: broker")).rsplit(":", 1)[1])
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
    assert output.splitlines()[-1] == "cartolog up: stopped"
    with socket.socket() as probe:  # the broker it started is gone too
        assert probe.connect_ex(("127.0.0.1", broker_port)) != 0
    # --log-level info --log-format json: the libraries' INFO records, each a JSON object.
    records = [json.loads(line) for line in (tmp_path / "up.err").read_text().splitlines()
               if line.startswith("{")]
    assert {"info", "warning"} & {r["level"] for r in records}
    assert any(r["logger"].startswith("kafka") and r["level"] == "info" for r in records)


def test_make_up_prints_little_before_ready_then_the_url_and_token(
        fresh_database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = up_environment(fresh_database_url, port)
    with (tmp_path / "make.log").open("w") as log:
        make = subprocess.Popen(["make", "up"], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        lines = wait_for_line(tmp_path / "make.log", READY, make, timeout=300)
        ready = lines.index(READY)
        before = lines[:ready]
        assert len(before) <= 15, "\n".join(before)
        assert not [line for line in before if " INFO " in line or " DEBUG " in line]
        api, workspace, token_line, token = lines[ready + 1:ready + 5]
        assert api.split() == ["API", f"http://127.0.0.1:{port}/docs"]
        assert workspace.split() == ["workspace", f"http://demo.localhost:{port}/"]
        assert token_line.split()[0] == "token" and token.count(".") == 2
        response = httpx.get(f"http://127.0.0.1:{port}/v1/datasets", timeout=10, headers={
            "Authorization": f"Bearer {token}", "Host": f"demo.localhost:{port}"})
        assert response.status_code == 200, response.text
    finally:
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole group
        make.wait(60)
    assert "cartolog up: stopped" in (tmp_path / "make.log").read_text()


def wait_for_line(path: Path, wanted: str, process: subprocess.Popen[bytes],
                  timeout: float) -> list[str]:
    """The lines of `path` once one of them is `wanted` (the file is a process's output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines()
        if wanted in lines:
            time.sleep(0.2)  # the lines printed with it
            return path.read_text().splitlines()
        assert process.poll() is None, f"exited early:\n{path.read_text()}"
        time.sleep(0.25)
    raise AssertionError(f"no line {wanted!r} after {timeout}s:\n{path.read_text()}")


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
