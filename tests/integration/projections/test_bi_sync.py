"""The BI sync manager against a slow external BI tool that builds one at a time."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import text

from adapters.bi_connectors import MAX_SUMMARY
from domain import rules
from domain.edits import SetZoneAttributes
from infra import projections_wiring as wiring
from infra.settings import Settings
from infra.wiring import Container
from projections.bi import BiSync
from projections.notifications import Notifications
from tests.integration.conftest import OPERATOR
from tests.integration.logcheck import wait_for
from tests.integration.projections.conftest import (
    checksums,
    relay_and_projector,
    running,
    wait_caught_up,
)
from tests.unit.test_domain import tiny_network


@pytest.fixture()
def settings(settings: Settings) -> Settings:
    """These tests' BI tools listen on 127.0.0.1, which the BI sync refuses by default."""
    return settings.model_copy(update={"bi_allow_private_hosts": True})


class BiTool:
    """Accepts one build at a time (409 otherwise); reports status only when polled."""

    def __init__(self, build_seconds: float) -> None:
        self.build_seconds = build_seconds
        self.lock = threading.Lock()
        self.builds: list[dict[str, Any]] = []
        self.started: dict[str, float] = {}
        self.calls = 0
        self.refused = 0

    def trigger(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls += 1
            if any(not self._done(b) for b in self.started):
                self.refused += 1
                return 409, {"error": "a build is running"}
            build_id = f"b{len(self.builds) + 1}"
            self.builds.append(body)
            self.started[build_id] = time.monotonic()
            return 202, {"build_id": build_id}

    def status(self, build_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls += 1
            if build_id not in self.started:
                return 404, {"error": "unknown build"}
            return 200, {"state": "done" if self._done(build_id) else "running"}

    def _done(self, build_id: str) -> bool:
        return time.monotonic() - self.started[build_id] >= self.build_seconds

    def running(self) -> bool:
        with self.lock:
            return any(not self._done(b) for b in self.started)


@contextlib.contextmanager
def serve(tool: BiTool) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self._answer(*tool.trigger(json.loads(self.rfile.read(length))))

        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            self._answer(*tool.status(query.get("build_id", [""])[0]))

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_args: Any) -> None:
            pass

    yield from serving(Handler)


def target_row(container: Container) -> dict[str, Any]:
    with container.engine.connect() as connection:
        row = connection.execute(text(
            "SELECT * FROM bi_target_status WHERE tenant_id = 'acme'")).mappings().first()
    return dict(row) if row else {}


def test_fifty_changes_during_a_slow_build_give_exactly_one_follow_up(
    own_container: Container,
) -> None:
    container = own_container
    tool = BiTool(build_seconds=4.0)
    app = container.app
    dataset = app.import_dataset("acme", "tiny", tiny_network(), OPERATOR)
    scenario = app.create_scenario("acme", dataset, "s", OPERATOR)
    container.ensure_topics()
    with serve(tool) as url:
        target = app.register_bi_target("acme", "dashboards", "external", OPERATOR,
                                        trigger_url=f"{url}/builds",
                                        status_url=f"{url}/builds/status")
        process = wiring.ProjectorProcess(wiring.projector(container),
                                          wiring.bi_manager(container, interval=0.1))
        with running(container.relay()), running(process):
            wait_for(tool.running, 60, "the first external build to start")
            version = app.get_scenario("acme", scenario).version
            for change in range(50):
                version = app.edit_scenario("acme", scenario, version,
                                            [SetZoneAttributes(1, population=float(change))],
                                            OPERATOR)
            assert tool.running(), "the 50 changes must land during the first build"
            wait_for(lambda: (target_row(container).get("completed_build") or 0) >= 2, 60,
                     "the follow-up build to complete")
            time.sleep(2.0)  # time for a (wrong) third build to be requested
            wait_caught_up(container)
            state = target_row(container)
    assert len(tool.builds) == 2 and tool.refused == 0
    assert tool.builds[1]["position"] >= max(b["position"] for b in tool.builds)
    assert (state["builds"], state["completed_build"], state["pending"],
            state["running_build"], state["dirty"]) == (2, 2, False, None, False)
    target_state = app.get_bi_target("acme", target)
    assert target_state.version == 1 + 2 * 3  # registered, then 2 x requested/started/completed
    with container.engine.connect() as connection:
        notified = connection.execute(text(
            "SELECT subject_id, details->>'build' FROM notifications WHERE tenant_id = 'acme' "
            "AND kind = 'bi.rebuild_completed' ORDER BY position")).all()
    assert [(str(r[0]), r[1]) for r in notified] == [(str(target), "1"), (str(target), "2")]

    # Replaying the log rebuilds the same sync state and calls nobody.
    tables = [*BiSync.tables, *Notifications.tables]
    before, calls = checksums(container, tables), tool.calls
    for projection in (BiSync, Notifications):
        wiring.rebuild(container, projection.name, "kafka")
    assert checksums(container, tables) == before
    assert tool.calls == calls


def test_the_builtin_target_refreshes_the_dashboard_table(own_container: Container) -> None:
    container = own_container
    from tests.integration.projections.conftest import Workload

    driver = Workload(container, ("acme",))
    for kind in (0, 1, 4):
        driver.do(kind, 0, 1, 75.0)
    container.app.register_bi_target("acme", "builtin", "builtin", OPERATOR)
    container.ensure_topics()
    process = wiring.ProjectorProcess(wiring.projector(container),
                                      wiring.bi_manager(container, interval=0.1))
    with running(container.relay()), running(process):
        wait_for(lambda: (target_row(container).get("completed_build") or 0) >= 1, 60,
                 "the built-in build")
    with container.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT name, value, build FROM bi_dashboard WHERE tenant_id = 'acme' "
            "ORDER BY name")).all()
    assert [tuple(r) for r in rows] == [("vehicle_hours", 75.0, 1), ("vehicle_km", 150.0, 1)]


class Tools:
    """Three BI tools on one server, by path: /ok builds, /broken answers 500 with what must
    not be shown, /fails reports every build failed with a screenful of text."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[str] = []

    def answer(self, method: str, path: str) -> tuple[int, bytes]:
        with self.lock:
            self.calls.append(f"{method} {path}")
        tool = path.split("/")[1]
        if tool == "broken":
            return 500, b"Traceback (most recent call last): db password=hunter2"
        if method == "POST":
            return 202, json.dumps({"build_id": f"{tool}-1"}).encode()
        state = {"state": "done"} if tool == "ok" else {
            "state": "failed", "error": "\x1b[2J" + "disk full; " * 2000}
        return 200, json.dumps(state).encode()


@contextlib.contextmanager
def serve_tools(tools: Tools) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._answer(*tools.answer("POST", urlparse(self.path).path))

        def do_GET(self) -> None:
            self._answer(*tools.answer("GET", urlparse(self.path).path))

        def _answer(self, status: int, raw: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_args: Any) -> None:
            pass

    yield from serving(Handler)


def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free loopback port for as long as the caller holds the URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def targets(container: Container) -> dict[tuple[str, str], dict[str, Any]]:
    with container.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM bi_target_status")).mappings().all()
    return {(r["tenant_id"], r["name"]): dict(r) for r in rows}


def test_one_tenants_failing_targets_leave_the_other_tenant_synced(
    container: Container, monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, tools = container.app, Tools()
    for tenant in ("acme", "rival"):
        app.import_dataset(tenant, "tiny", tiny_network(), OPERATOR)
    with serve_tools(tools) as url:
        for name in ("broken", "fails"):
            app.register_bi_target("acme", name, "external", OPERATOR,
                                   f"{url}/{name}/builds", f"{url}/{name}/status")
        with monkeypatch.context() as patch:  # as if stored before URLs were checked
            patch.setattr(rules, "url_problem", lambda what, url: None)
            app.register_bi_target("acme", "bad", "external", OPERATOR, "http://[::1",
                                   "http://[::1")
        app.register_bi_target("rival", "ok", "external", OPERATOR, f"{url}/ok/builds",
                               f"{url}/ok/status")
        manager = wiring.bi_manager(container, interval=0.05)
        thread = threading.Thread(target=manager.run, daemon=True)
        with relay_and_projector(container):
            thread.start()
            try:
                wait_for(lambda: (targets(container).get(("rival", "ok"), {})
                                  .get("completed_build") or 0) >= 1, 60,
                         "the rival's build to complete")
                wait_for(lambda: all(targets(container).get(("acme", n), {}).get("last_error")
                                     for n in ("broken", "fails", "bad")), 60,
                         "acme's three failures to be recorded")
                assert thread.is_alive(), "the BI sync thread stopped"
            finally:
                manager.stop()
                thread.join(30)
    found = targets(container)
    assert found[("acme", "broken")]["last_error"] == "trigger: HTTP 500 Internal Server Error"
    assert found[("acme", "bad")]["last_error"] == "the target's URL is not valid"
    reported = found[("acme", "fails")]["last_error"]
    assert reported.startswith("the BI tool reported a failure: [2Jdisk full; disk full;")
    assert len(reported) <= MAX_SUMMARY and reported.isprintable()
    assert all(found[("acme", n)]["running_build"] is None for n in ("broken", "fails", "bad"))
    assert "hunter2" not in json.dumps({str(k): v for k, v in found.items()}, default=str)
    assert found[("rival", "ok")]["last_error"] is None
