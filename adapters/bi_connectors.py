"""BI connectors and the live BI sync manager.

The manager is the only part that acts: it requests, starts, triggers, polls and completes
rebuilds, recording each decision as a `BiTarget` event through the application. The
`bi_sync` projection only records those events, so a replay never calls a BI tool.

A build started at log position P is triggered only once the read model has absorbed the
log up to P (the tool reads the read model), and it is complete when the tool says so.
The external tool accepts one build at a time and never notifies: it is polled.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from typing import Any, Protocol

import httpcore
import httpx
from sqlalchemy import Engine, text

from domain import rules
from domain.application import Cartolog
from domain.values import Actor
from projections.bi import REQUEST, START, WATCH, TargetState, next_steps

log = logging.getLogger(__name__)
MANAGER = "service:bi-sync"
RUNNING, DONE, FAILED, BUSY = "running", "done", "failed", "busy"


@dataclass(frozen=True)
class Build:
    """One build the manager is driving."""

    tenant_id: str
    target_id: uuid.UUID
    build: int
    position: int
    trigger_url: str
    status_url: str


class Connector(Protocol):
    """A kind of BI target."""

    def trigger(self, build: Build) -> str:
        """Start the build; returns a handle for polling, or BUSY to try again later."""
        ...

    def poll(self, build: Build, handle: str) -> tuple[str, str]:
        """(RUNNING | DONE | FAILED, error text)."""
        ...


class BuiltinConnector:
    """Refreshes the tenant's `bi_dashboard` table from the indicators, in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def trigger(self, build: Build) -> str:
        """Refresh now; the handle is the build number."""
        with self.engine.begin() as connection:
            connection.execute(text("DELETE FROM bi_dashboard WHERE tenant_id = :t"),
                               {"t": build.tenant_id})
            connection.execute(text(
                "INSERT INTO bi_dashboard (tenant_id, run_id, name, scenario_id, value, unit, "
                "build) SELECT tenant_id, run_id, name, scenario_id, value, unit, :b "
                "FROM indicators WHERE tenant_id = :t"), {"t": build.tenant_id, "b": build.build})
        return str(build.build)

    def poll(self, build: Build, handle: str) -> tuple[str, str]:
        """The refresh finished inside trigger()."""
        return DONE, ""


# -- which hosts an external target may be (decision 0712) -------------------------------

# NAT64 (RFC 6052) maps every IPv4 address into this prefix: 64:ff9b::a9fe:a9fe is
# 169.254.169.254 where a NAT64 gateway exists.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
HOST_RULE = ("the host must resolve, and only to public addresses (not loopback, private, "
             "link-local, multicast, reserved or unspecified ones)")
# What of a BI tool's answer is read (bytes) and kept (characters of its error text).
MAX_ANSWER_BYTES = 64 * 1024
MAX_REMOTE_TEXT = 200
MAX_SUMMARY = 300
# The longest one call to a BI tool may take in all: connecting, sending and every read. The
# read timeout alone bounds each read, so a tool answering a byte every few seconds would
# hold its call for days (decision 0716).
CALL_DEADLINE_S = 15.0
# How many targets the manager drives at once: a slow tool holds one of these, not the loop.
BI_WORKERS = 8

Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6), as the socket layer would use."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def public_address(text: str) -> bool:
    """Whether an address may be called with private hosts refused: not loopback, private,
    link-local, multicast, reserved or unspecified, nor an IPv6 address carrying such an
    IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64)."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # fe80::1%eth0: scope dropped
    except ValueError:
        return False
    return not _refused(address)


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on a dual stack
            return _refused(address.ipv4_mapped)
        embedded = [address.sixtofour,
                    address.teredo[1] if address.teredo else None]
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.is_site_local or any(e is not None and _refused(e) for e in embedded):
            return True
    return (not address.is_global or address.is_private or address.is_loopback
            or address.is_link_local or address.is_multicast or address.is_reserved
            or address.is_unspecified)


class HostRefused(Exception):
    """An external target's host is not one the BI sync may call."""


@dataclass(frozen=True)
class HostPolicy:
    """Which hosts external BI targets may be: public ones only, unless private hosts are
    allowed (CARTOLOG_BI_ALLOW_PRIVATE_HOSTS). Checked when a target is registered and again
    at every connection, against the very addresses then connected to (DNS rebinding)."""

    allow_private: bool = False
    resolve: Resolver = system_resolver

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for `host`; HostRefused when it may not be called."""
        try:
            found = self.resolve(host, port)
        except (OSError, UnicodeError) as error:
            log.info("BI host %r does not resolve: %s", host, error)
            raise HostRefused(HOST_RULE) from None
        if not found:
            raise HostRefused(HOST_RULE)
        refused = [a for a in found if not public_address(a)]
        if refused and not self.allow_private:
            # The addresses are logged, not shown: a tenant must not learn the private
            # addresses of host names inside the operator's network.
            log.info("BI host %r refused: it resolves to %s", host, ", ".join(refused))
            raise HostRefused(HOST_RULE)
        return found

    def url_problem(self, what: str, url: str) -> str | None:
        """Why an external target may not call `url` (None when it may): the URL rules
        (domain/rules.py), then where its host resolves to."""
        problem = rules.url_problem(what, url)
        if problem:
            return problem
        try:
            parsed = httpx.URL(url)
            host = parsed.raw_host.decode("ascii")
        except (httpx.InvalidURL, UnicodeError):
            return f"{what} is not a valid URL"
        try:
            self.addresses(host, parsed.port or (443 if parsed.scheme == "https" else 80))
        except HostRefused as refused:
            return f"{what}: {refused}"
        return None


_call = threading.local()  # the deadline of the call this thread is making, if any


@contextlib.contextmanager
def call_deadline(seconds: float) -> Iterator[None]:
    """Every connect, read and write of this thread's connections inside the block ends by
    `seconds` from now (GuardedBackend's streams read it)."""
    _call.until = time.monotonic() + seconds
    try:
        yield
    finally:
        _call.until = None


def _within_deadline(timeout: float | None, late: type[Exception]) -> float | None:
    """`timeout` cut to what is left of the call's deadline; `late` raised when none is."""
    until: float | None = getattr(_call, "until", None)
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise late("the call to the BI tool ran past its deadline")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the call's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """As the inner stream, within the deadline."""
        return self.inner.read(max_bytes, _within_deadline(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """As the inner stream, within the deadline."""
        self.inner.write(buffer, _within_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        """As the inner stream."""
        self.inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        """The TLS stream, itself within the deadline."""
        return DeadlineStream(self.inner.start_tls(
            ssl_context, server_hostname, _within_deadline(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        """As the inner stream."""
        return self.inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Connects only to addresses the host policy allows, and to exactly those it checked:
    the name is resolved once, here, so a second answer cannot swap in a private address."""

    def __init__(self, policy: HostPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        """A connection to the first allowed address of `host` that answers."""
        failure: Exception | None = None
        for address in self.policy.addresses(host, port):
            try:
                return DeadlineStream(self.inner.connect_tcp(
                    address, port, _within_deadline(timeout, httpcore.ConnectTimeout),
                    local_address, socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # addresses() returns at least one address
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        """BI targets are never Unix sockets."""
        raise HostRefused("a BI target is reached over TCP only")

    def sleep(self, seconds: float) -> None:
        """As the default backend."""
        self.inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, its connection pool on the guarded backend (no proxy)."""

    def __init__(self, policy: HostPolicy) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                             network_backend=GuardedBackend(policy))


def guarded_client(policy: HostPolicy, timeout: float = 10.0) -> httpx.Client:
    """An HTTP client for BI tools: the host policy at connect time, no redirects followed
    (a redirect is an error naming its status), no proxy or .netrc from the environment."""
    return httpx.Client(transport=GuardedTransport(policy), timeout=timeout,
                        follow_redirects=False, trust_env=False)


# -- what a failure leaves in a target's last_error ---------------------------------------

class TargetError(Exception):
    """A BI tool's answer that fails the build; the message is the stored summary."""


def remote_text(text: object, limit: int = MAX_REMOTE_TEXT) -> str:
    """A BI tool's own words, as far as they are kept: control, format and separator
    characters made spaces, runs of space made one, at most `limit` characters."""
    cleaned = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in str(text))
    words = " ".join(cleaned.split())
    return words if len(words) <= limit else words[:limit - 1] + "…"


def status_summary(step: str, status: int) -> str:
    """`trigger: HTTP 502 Bad Gateway`: the code and its standard reason, never the tool's."""
    phrase = httpx.codes.get_reason_phrase(status)
    redirect = " (redirects are not followed)" if 300 <= status < 400 else ""
    return f"{step}: HTTP {status} {phrase}".rstrip() + redirect


def failure_summary(error: BaseException) -> str:
    """What a tenant is shown of an error syncing their target: bounded, and nothing the
    remote server wrote beyond MAX_REMOTE_TEXT characters of a reported failure."""
    if isinstance(error, TargetError | HostRefused):
        text = str(error)
    elif isinstance(error, httpx.TimeoutException):
        text = "the BI tool did not answer in time"
    elif isinstance(error, httpx.ConnectError):
        text = "could not connect to the BI tool"
    elif isinstance(error, httpx.TransportError):
        text = f"the connection to the BI tool failed ({type(error).__name__})"
    elif isinstance(error, httpx.InvalidURL):
        text = "the target's URL is not valid"
    else:
        text = f"internal error ({type(error).__name__}); the BI sync log has the details"
    return remote_text(text, MAX_SUMMARY)


class HttpConnector:
    """An external BI tool: POST trigger_url starts a build (409 while one runs);
    GET status_url?build_id=ID answers {"state": "running" | "done" | "failed"}.

    Errors raise: TargetError (the tool answered what it should not), HostRefused (the
    host policy), or httpx's errors (no answer)."""

    def __init__(self, policy: HostPolicy | None = None,
                 client: httpx.Client | None = None,
                 deadline_s: float = CALL_DEADLINE_S) -> None:
        self.policy = policy or HostPolicy()
        self.client = client or guarded_client(self.policy)
        self.deadline_s = deadline_s

    def trigger(self, build: Build) -> str:
        """Ask the tool for a build."""
        status, answer = self._request("trigger", "POST", build.trigger_url, json={
            "tenant_id": build.tenant_id, "target_id": str(build.target_id),
            "build": build.build, "position": build.position})
        if status == 409:
            return BUSY
        if not 200 <= status < 300:
            raise TargetError(status_summary("trigger", status))
        build_id = _field(answer, "build_id")
        if build_id is None or isinstance(build_id, dict | list) or not str(build_id).strip():
            raise TargetError("trigger: the answer holds no build_id")
        return remote_text(build_id)

    def poll(self, build: Build, handle: str) -> tuple[str, str]:
        """Ask the tool how the build is doing."""
        status, answer = self._request("status", "GET", build.status_url,
                                       params={"build_id": handle})
        if not 200 <= status < 300:
            raise TargetError(status_summary("status", status))
        state = _field(answer, "state")
        if state == DONE:
            return DONE, ""
        if state == FAILED:
            said = remote_text(_field(answer, "error") or "")
            return FAILED, "the BI tool reported a failure" + (f": {said}" if said else "")
        return RUNNING, ""

    def _request(self, step: str, method: str, url: str, **options: Any) -> tuple[int, Any]:
        """The status and the JSON answer (None when there is none), read up to
        MAX_ANSWER_BYTES, all within the call's deadline."""
        with call_deadline(self.deadline_s), self.client.stream(method, url,
                                                                 **options) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise TargetError(f"{step}: the answer is over {MAX_ANSWER_BYTES} bytes")
            status = response.status_code
        try:
            return status, json.loads(bytes(body)) if body else None
        except ValueError:
            if 200 <= status < 300:
                raise TargetError(f"{step}: the answer is not JSON") from None
            return status, None


def _field(answer: Any, name: str) -> Any:
    return answer.get(name) if isinstance(answer, dict) else None


Absorbed = Callable[[int], bool]


class BiSyncManager:
    """The live loop: for each target, request / start / trigger / poll / complete.

    Targets are independent: whatever one target raises is that target's alone. An error
    from its BI tool (or the host policy) fails its running build, which records a bounded
    summary as its `last_error` (decision 0712); any other error is logged and the target is
    tried again next tick. Nothing a target does stops the loop or the other targets, and a
    slow one does not hold them up: targets are driven by `workers` threads, one step of a
    target at a time, and a tick does not wait for a target still busy from the last
    (decision 0716)."""

    def __init__(self, app: Cartolog, engine: Engine, head: Callable[[], int],
                 absorbed: Absorbed, connectors: Mapping[str, Connector],
                 interval: float = 0.25, workers: int = BI_WORKERS) -> None:
        self.app = app
        self.engine = engine
        self.head = head
        self.absorbed = absorbed
        self.connectors = connectors
        self.interval = interval
        self.stopping = threading.Event()
        self.handles: dict[tuple[uuid.UUID, int], str] = {}
        self.troubled: dict[uuid.UUID, str] = {}  # the last error logged per target
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bi-target")
        self.busy: set[uuid.UUID] = set()  # targets a worker is driving
        self.lock = threading.Lock()

    def run(self) -> None:
        """Tick until stop(); no error ends the loop (the next tick tries again). Each tick
        hands the targets that are not busy to the workers and does not wait for them."""
        try:
            while not self.stopping.is_set():
                try:
                    self.tick(wait=False)
                except Exception:  # the database went away, say: log it, keep ticking
                    log.exception("BI sync tick failed, retrying")
                self.stopping.wait(self.interval)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        """Return after the current tick."""
        self.stopping.set()

    def tick(self, wait: bool = True) -> None:
        """One step of every projected target that is not busy; one target's failure is its
        own. `wait`: return once those steps are done (the live loop does not wait)."""
        started: list[Future[None]] = []
        for tenant_id, target_id, data_position in self._targets():
            with self.lock:
                if target_id in self.busy:
                    continue
                self.busy.add(target_id)
            try:
                started.append(self.pool.submit(self._step, tenant_id, target_id,
                                                data_position))
            except RuntimeError:  # the pool is shut down: the manager is stopping
                with self.lock:
                    self.busy.discard(target_id)
                return
        if wait:
            wait_for(started)

    def _step(self, tenant_id: str, target_id: uuid.UUID, data_position: int) -> None:
        try:
            self._advance(tenant_id, target_id, data_position)
        except Exception as error:
            self._trouble(tenant_id, target_id, error)
        else:
            self.troubled.pop(target_id, None)
        finally:
            with self.lock:
                self.busy.discard(target_id)

    def _trouble(self, tenant_id: str, target_id: uuid.UUID, error: Exception) -> None:
        """Log an error of one target: in full the first time, briefly while it repeats."""
        said = f"{type(error).__name__}: {error}"
        if self.troubled.get(target_id) == said:
            log.debug("BI target %s of %s still failing: %s", target_id, tenant_id, said)
            return
        self.troubled[target_id] = said
        log.warning("BI target %s of %s failed, trying again next tick", target_id, tenant_id,
                    exc_info=error)

    def _targets(self) -> list[tuple[str, uuid.UUID, int]]:
        with self.engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT t.tenant_id, t.target_id, coalesce(d.data_position, 0) FROM bi_targets t "
                "LEFT JOIN tenant_data d ON d.tenant_id = t.tenant_id ORDER BY 1, 2")).all()
        return [(r[0], uuid.UUID(str(r[1])), int(r[2])) for r in rows]

    def _advance(self, tenant_id: str, target_id: uuid.UUID, data_position: int) -> None:
        target = self.app.get_bi_target(tenant_id, target_id)
        state = TargetState(target.pending, target.running, target.started_position,
                            data_position)
        by = Actor(MANAGER)
        for step in next_steps(state):
            if step == REQUEST:
                self.app.request_bi_rebuild(tenant_id, target_id, "data changed", by)
            elif step == START:
                self.app.start_bi_rebuild(tenant_id, target_id, self.head(), by)
            elif step == WATCH:
                self._watch(self.app.get_bi_target(tenant_id, target_id))

    def _watch(self, target: Any) -> None:
        build = Build(target.tenant_id, target.id, target.running, target.started_position,
                      target.trigger_url, target.status_url)
        key = (target.id, build.build)
        by = Actor(MANAGER)
        if key not in self.handles and not self.absorbed(build.position):
            return  # the read model has not caught up with the build's position yet
        try:
            connector = self.connectors[target.kind]
            if key not in self.handles:
                handle = connector.trigger(build)
                if handle == BUSY:
                    return
                self.handles[key] = handle
            state, error = connector.poll(build, self.handles[key])
        except Exception as failure:  # the tool's (or its URL's): this build fails, alone
            self.handles.pop(key, None)
            log.warning("BI build %s of target %s (%s) failed", build.build, target.id,
                        target.tenant_id, exc_info=failure)
            self.app.fail_bi_rebuild(build.tenant_id, build.target_id, build.build,
                                     failure_summary(failure), by)
            return
        if state == DONE:
            self.app.complete_bi_rebuild(build.tenant_id, build.target_id, build.build, by)
            self.handles.pop(key)
        elif state == FAILED:
            self.app.fail_bi_rebuild(build.tenant_id, build.target_id, build.build,
                                     remote_text(error, MAX_SUMMARY), by)
            self.handles.pop(key)
