"""A real HTTP server (uvicorn on a free port) around a container, for clients that are
separate programs (GDAL's ogrinfo); tenants are reached as http://TENANT.localhost:PORT."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from infra.broker import free_port
from infra.http import ApiSettings, build_api
from infra.wiring import Container


@contextlib.contextmanager
def live_server(container: Container) -> Iterator[int]:
    """Serve the API until the block ends; yields the port."""
    port = free_port()
    app = build_api(container, ApiSettings(rate_per_second=1000, rate_burst=1000))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


class LiveApi:
    """httpx against the live server, with dev-issuer tokens of a tenant."""

    def __init__(self, container: Container, port: int) -> None:
        self.container, self.port = container, port

    def token(self, tenant: str, role: str = "editor") -> str:
        return self.container.dev_issuer.issue(tenant, role, sub=f"{role}@{tenant}")

    def url(self, tenant: str, path: str) -> str:
        return f"http://{tenant}.localhost:{self.port}{path}"

    def request(self, method: str, tenant: str, path: str, token_of: str | None = None,
                **kw: Any) -> httpx.Response:
        """A request to `tenant`'s host (httpx cannot resolve *.localhost: Host says it)."""
        headers = {"Authorization": f"Bearer {self.token(token_of or tenant)}",
                   "Host": f"{tenant}.localhost:{self.port}"}
        return httpx.request(method, f"http://127.0.0.1:{self.port}{path}", headers=headers,
                             timeout=60, **kw)
