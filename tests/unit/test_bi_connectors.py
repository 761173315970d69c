"""The BI sync manager keeps one target's failure to that target, and the host policy keeps
external targets off private addresses (decision 0712)."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from adapters import bi_connectors
from adapters.bi_connectors import (
    MAX_ANSWER_BYTES,
    MAX_REMOTE_TEXT,
    MAX_SUMMARY,
    BiSyncManager,
    Build,
    HostPolicy,
    HostRefused,
    HttpConnector,
    TargetError,
    public_address,
    remote_text,
)
from domain import rules
from domain.application import Cartolog
from domain.errors import InvalidCommand
from tests.unit.fakes import InMemoryBlobStore
from tests.unit.test_domain import ME

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture()
def app() -> Iterator[Cartolog]:
    application = Cartolog({"PERSISTENCE_MODULE": "eventsourcing.popo"},
                           blobs=InMemoryBlobStore())
    for tenant in ("acme", "rival"):
        application.register_tenant(tenant, ME)
    yield application
    application.close()


class Manager(BiSyncManager):
    """The manager over a list of targets instead of the bi_sync tables; every tenant's
    data is newer than any build, and the read model has absorbed everything."""

    def __init__(self, app: Cartolog, targets: list[tuple[str, uuid.UUID]],
                 connector: HttpConnector) -> None:
        super().__init__(app, engine=None, head=lambda: 10,  # type: ignore[arg-type]
                         absorbed=lambda position: True,
                         connectors={"external": connector}, interval=0.001)
        self.targets = targets
        self.failed: dict[str, str] = {}
        self.completed: set[str] = set()
        self.ticks = 0
        record_failure, record_completion = app.fail_bi_rebuild, app.complete_bi_rebuild

        def failed(tenant_id: str, target_id: uuid.UUID, build: int, error: str,
                   by: Any) -> None:
            self.failed[tenant_id] = error
            record_failure(tenant_id, target_id, build, error, by)

        def completed(tenant_id: str, target_id: uuid.UUID, build: int, by: Any) -> None:
            self.completed.add(tenant_id)
            record_completion(tenant_id, target_id, build, by)

        app.fail_bi_rebuild = failed  # type: ignore[method-assign]
        app.complete_bi_rebuild = completed  # type: ignore[method-assign]

    def _targets(self) -> list[tuple[str, uuid.UUID, int]]:
        self.ticks += 1
        return [(tenant, target, 5) for tenant, target in self.targets]


def tool(answers: dict[str, Handler]) -> HttpConnector:
    """A connector whose requests are answered per host, with no network."""
    def handle(request: httpx.Request) -> httpx.Response:
        return answers[request.url.host](request)
    return HttpConnector(client=httpx.Client(transport=httpx.MockTransport(handle)))


def working(request: httpx.Request) -> httpx.Response:
    if request.method == "POST":
        return httpx.Response(202, json={"build_id": "b1"})
    return httpx.Response(200, json={"state": "done"})


def register(app: Cartolog, tenant: str, host: str) -> uuid.UUID:
    return app.register_bi_target(tenant, "dash", "external", ME, f"http://{host}/builds",
                                  f"http://{host}/status")


def two_tenants(app: Cartolog, failing: Handler, failing_url: str | None = None
                ) -> tuple[Manager, uuid.UUID]:
    """acme's target answers with `failing`, rival's works; acme comes first in a tick."""
    if failing_url is None:
        acme = register(app, "acme", "acme.bi.test")
    else:  # a target stored before URLs were checked at registration
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(rules, "url_problem", lambda what, url: None)
            acme = app.register_bi_target("acme", "dash", "external", ME, failing_url,
                                          failing_url)
    rival = register(app, "rival", "rival.bi.test")
    manager = Manager(app, [("acme", acme), ("rival", rival)],
                      tool({"acme.bi.test": failing, "rival.bi.test": working}))
    manager.tick()  # requests and starts both builds
    return manager, acme


def raises(request: httpx.Request) -> httpx.Response:
    raise RuntimeError("the tool's client library broke")


@pytest.mark.parametrize(("failing", "summary"), [
    (raises, "internal error (RuntimeError); the BI sync log has the details"),
    (lambda r: httpx.Response(500, text="Traceback ... password=hunter2"),
     "trigger: HTTP 500 Internal Server Error"),
    (lambda r: httpx.Response(200, text="<html>not json"), "trigger: the answer is not JSON"),
    (lambda r: httpx.Response(202, json={"nothing": 1}), "trigger: the answer holds no build_id"),
    (lambda r: httpx.Response(302, headers={"Location": "http://169.254.169.254/"}),
     "trigger: HTTP 302 Found (redirects are not followed)"),
])
def test_a_failing_target_fails_its_own_build_and_the_other_tenant_syncs_in_the_same_tick(
    app: Cartolog, failing: Handler, summary: str,
) -> None:
    manager, acme = two_tenants(app, failing)
    manager.tick()
    assert manager.failed == {"acme": summary}
    assert manager.completed == {"rival"}
    assert app.get_bi_target("acme", acme).running is None  # failed, not stuck


def test_a_failure_the_tool_reports_is_kept_short_and_printable(app: Cartolog) -> None:
    said = "\x1b[31mdisk full\x00\n" + "<script>" * 5000

    def failed_build(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={"build_id": "b1"})
        return httpx.Response(200, json={"state": "failed", "error": said})

    manager, _ = two_tenants(app, failed_build)
    manager.tick()
    error = manager.failed["acme"]
    assert error.startswith("the BI tool reported a failure: [31mdisk full <script>")
    assert len(error) <= MAX_SUMMARY
    assert error.count("<script>") < MAX_REMOTE_TEXT // len("<script>") + 1
    assert error.isprintable()
    assert manager.completed == {"rival"}


def test_an_invalid_url_stored_earlier_fails_that_target_and_the_thread_keeps_running(
    app: Cartolog,
) -> None:
    manager, _ = two_tenants(app, working, failing_url="http://[::1")
    rival_done = threading.Event()
    complete = app.complete_bi_rebuild

    def completed(*args: Any) -> None:
        complete(*args)
        rival_done.set()

    app.complete_bi_rebuild = completed  # type: ignore[method-assign]
    thread = threading.Thread(target=manager.run, daemon=True)
    thread.start()
    try:
        assert rival_done.wait(30), "the rival's build never completed"
        assert thread.is_alive()
    finally:
        manager.stop()
        thread.join(30)
    assert manager.failed == {"acme": "the target's URL is not valid"}


def test_an_error_outside_any_target_does_not_end_the_loop(app: Cartolog) -> None:
    manager, _ = two_tenants(app, working)
    broken = threading.Event()
    listed = manager._targets

    def targets() -> list[tuple[str, uuid.UUID, int]]:
        if not broken.is_set():
            broken.set()
            raise KeyError("the database answered nonsense")
        if manager.completed == {"acme", "rival"}:
            manager.stop()
        return listed()

    manager._targets = targets  # type: ignore[method-assign]
    manager.run()  # returns only through stop(): after the error, both builds complete
    assert broken.is_set() and manager.completed == {"acme", "rival"}


def test_a_target_failing_every_tick_is_logged_once_in_full(
    app: Cartolog, caplog: pytest.LogCaptureFixture,
) -> None:
    manager, acme = two_tenants(app, working)

    def missing(tenant_id: str, target_id: uuid.UUID) -> Any:
        raise LookupError("gone")

    manager.app = type("Broken", (), {"get_bi_target": staticmethod(missing)})()  # type: ignore[assignment]
    with caplog.at_level("WARNING", logger=bi_connectors.__name__):
        for _ in range(5):
            manager.tick()
    assert len(caplog.records) == 2  # once per target, not once per tick
    assert acme in manager.troubled


# -- host policy -------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "0.0.0.0", "10.0.0.1", "172.16.5.4", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255", "198.51.100.7", "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1",
    "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1",
    "::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2001:db8::1", "fec0::1", "not an ip",
])
def test_private_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111",
                                     "::ffff:8.8.8.8"])
def test_public_addresses_are_public(address: str) -> None:
    assert public_address(address)


def resolver(answers: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("Name or service not known")
        return answers[host]
    return resolve


NAMES = resolver({"public.test": ["93.184.216.34", "2606:4700:4700::1111"],
                  "sneaky.test": ["93.184.216.34", "::ffff:127.0.0.1"],
                  "metadata.test": ["169.254.169.254"], "empty.test": []})


@pytest.mark.parametrize("url", [
    "http://sneaky.test/b", "http://metadata.test/b", "http://nowhere.test/b",
    "http://empty.test/b", "http://127.0.0.1:8080/b", "http://[::1]/b", "http://0.0.0.0/b",
    "http://169.254.169.254/latest/meta-data", "http://[::ffff:7f00:1]/b",
    "http://2130706433/b", "https://localhost/b",
])
def test_private_hosts_are_refused_by_default(url: str) -> None:
    policy = HostPolicy(resolve=lambda host, port: NAMES(host, port) if host.endswith(".test")
                        else bi_connectors.system_resolver(host, port))
    problem = policy.url_problem("trigger_url", url)
    assert problem == f"trigger_url: {bi_connectors.HOST_RULE}"
    assert "127.0.0.1" not in problem and "169.254" not in problem  # addresses not shown


def test_private_hosts_are_allowed_with_the_setting_and_public_ones_always() -> None:
    assert HostPolicy(resolve=NAMES).url_problem("trigger_url", "https://public.test/b") is None
    allowing = HostPolicy(allow_private=True, resolve=NAMES)
    for url in ("http://sneaky.test/b", "http://metadata.test/b"):
        assert allowing.url_problem("trigger_url", url) is None
    assert allowing.url_problem("trigger_url", "http://nowhere.test/b") is not None


@pytest.mark.parametrize("url", ["http://[::1", "http://bi.test:99999/", "ftp://bi.test/",
                                 "http:///b", "http://bi.test/\x00"])
def test_invalid_urls_are_refused_before_any_lookup(url: str) -> None:
    def resolve(host: str, port: int) -> list[str]:
        raise AssertionError("looked up")
    assert HostPolicy(resolve=resolve).url_problem("trigger_url", url) is not None


def test_the_domain_refuses_an_invalid_url_from_any_door(app: Cartolog) -> None:
    with pytest.raises(InvalidCommand) as refused:
        app.register_bi_target("acme", "dash", "external", ME, "http://[::1", "http://[::1")
    assert refused.value.problems == ["trigger_url is not a valid URL",
                                      "status_url is not a valid URL"]


# -- the connection itself ---------------------------------------------------------------

class Tool:
    """A local BI tool: what it was asked, and what it answers."""

    def __init__(self, status: int = 202, body: bytes = b'{"build_id": "b1"}',
                 headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.paths: list[str] = []
        self.hosts: list[str] = []


@contextlib.contextmanager
def serve(tool: Tool) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            tool.paths.append(self.path)
            tool.hosts.append(self.headers.get("Host", ""))
            self.send_response(tool.status)
            for name, value in tool.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(tool.body)))
            self.end_headers()
            self.wfile.write(tool.body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def build(url: str) -> Build:
    return Build("acme", uuid.uuid4(), 1, 5, url, url)


def test_a_name_that_resolves_to_a_private_address_at_connect_time_is_not_called() -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    policy = HostPolicy(resolve=lambda host, port: next(answers))
    tool = Tool()
    with serve(tool) as port:
        url = f"http://rebind.test:{port}/builds"
        assert policy.url_problem("trigger_url", url) is None  # public when registered
        with pytest.raises(HostRefused):
            HttpConnector(policy).trigger(build(url))
    assert tool.paths == []


def test_the_connection_goes_to_the_address_the_policy_checked() -> None:
    tool = Tool()
    policy = HostPolicy(allow_private=True,
                        resolve=lambda host, port: {"bi.test": ["127.0.0.1"]}[host])
    with serve(tool) as port:
        handle = HttpConnector(policy).trigger(build(f"http://bi.test:{port}/builds"))
    assert handle == "b1"
    assert tool.hosts == [f"bi.test:{port}"]


def test_a_redirect_is_not_followed() -> None:
    tool = Tool(302, b"", {"Location": "/internal"})
    with serve(tool) as port, pytest.raises(TargetError) as failed:
        HttpConnector(HostPolicy(allow_private=True)).trigger(
            build(f"http://127.0.0.1:{port}/builds"))
    assert str(failed.value) == "trigger: HTTP 302 Found (redirects are not followed)"
    assert tool.paths == ["/builds"]


def test_an_answer_is_read_up_to_its_limit() -> None:
    body = json.dumps({"build_id": "b1", "pad": "x" * MAX_ANSWER_BYTES}).encode()
    with serve(Tool(body=body)) as port, pytest.raises(TargetError) as failed:
        HttpConnector(HostPolicy(allow_private=True)).trigger(
            build(f"http://127.0.0.1:{port}/builds"))
    assert str(failed.value) == f"trigger: the answer is over {MAX_ANSWER_BYTES} bytes"


def test_the_default_client_refuses_a_private_target() -> None:
    tool = Tool()
    with serve(tool) as port, pytest.raises(HostRefused):
        HttpConnector().trigger(build(f"http://127.0.0.1:{port}/builds"))
    assert tool.paths == []


def test_remote_text_is_printable_and_bounded() -> None:
    assert remote_text("a\x00b\n\u202ec\t  d") == "a b c d"
    assert len(remote_text("x" * 10_000)) == MAX_REMOTE_TEXT


def test_the_target_list_waits_for_the_projection_that_writes_its_tables() -> None:
    from api.routes.bi import PROJECTION
    from projections.bi import BiSync

    assert BiSync.name == PROJECTION
    assert {"bi_targets", "tenant_data"} <= {spec.name for spec in BiSync.tables}


# -- a slow tool holds its own target only (decision 0716) ------------------------------

def test_a_tool_that_never_answers_does_not_hold_up_another_tenants_sync(
        app: Cartolog) -> None:
    """acme's tool takes the call and never answers; rival's build completes meanwhile, in
    the live loop, and acme's call is not repeated while it is still being made."""
    release, calls = threading.Event(), []

    def hangs(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        release.wait(60)
        return httpx.Response(503)

    manager, acme = two_tenants(app, hangs)
    thread = threading.Thread(target=manager.run, daemon=True)
    thread.start()
    try:
        for _ in range(3000):  # bounded: 30 s at most
            if manager.completed:
                break
            threading.Event().wait(0.01)
        assert manager.completed == {"rival"}
        assert calls == ["POST"] and acme in manager.busy
    finally:
        release.set()
        manager.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert manager.failed == {"acme": "trigger: HTTP 503 Service Unavailable"}


class Trickle(BaseHTTPRequestHandler):
    """A tool that answers a byte every 50 ms: a valid answer, after a minute."""

    protocol_version = "HTTP/1.1"
    headers_too = False

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"build_id": "b1"}' + b" " * 1200
        head = (b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        if not self.headers_too:
            self.wfile.write(head)
            head = b""
        for byte in head + body:
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:  # the client gave up: what the test wants
                return
            threading.Event().wait(0.05)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.mark.parametrize("headers_too", [False, True])
def test_a_tool_trickling_its_answer_is_cut_off_at_the_call_deadline(headers_too: bool) -> None:
    """Each byte comes well within the read timeout, so only the call's deadline ends it."""
    handler = type("Handler", (Trickle,), {"headers_too": headers_too})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connector = HttpConnector(HostPolicy(allow_private=True), deadline_s=1.0)
        with pytest.raises(httpx.TimeoutException) as late:
            connector.trigger(build(f"http://127.0.0.1:{server.server_address[1]}/builds"))
    finally:
        server.shutdown()
        server.server_close()
    assert bi_connectors.failure_summary(late.value) == "the BI tool did not answer in time"
