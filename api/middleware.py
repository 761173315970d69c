"""ASGI middleware: correlation id, structured access log, metrics and the body size limit."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORRELATION_HEADER = "x-correlation-id"
CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
log = logging.getLogger("cartolog.api")


class BodyTooLarge(Exception):
    """The request body exceeded the limit while it was read."""


class Metrics:
    """Request counts and latency histograms by method, route and status (Prometheus text)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self._sums: dict[tuple[str, str], tuple[float, int]] = defaultdict(lambda: (0.0, 0))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        with self._lock:
            self._counts[(method, route, status)] += 1
            buckets = self._buckets[(method, route)]
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    buckets[index] += 1
            total, count = self._sums[(method, route)]
            self._sums[(method, route)] = (total + seconds, count + 1)

    def render(self) -> str:
        """The Prometheus text exposition of these metrics."""
        lines = ["# HELP cartolog_http_requests_total HTTP requests by route and status.",
                 "# TYPE cartolog_http_requests_total counter"]
        with self._lock:
            for (method, route, status), count in sorted(self._counts.items()):
                lines.append(f'cartolog_http_requests_total{{method="{method}",'
                             f'route="{route}",status="{status}"}} {count}')
            lines += ["# HELP cartolog_http_request_seconds HTTP request latency.",
                      "# TYPE cartolog_http_request_seconds histogram"]
            for (method, route), buckets in sorted(self._buckets.items()):
                labels = f'method="{method}",route="{route}"'
                for bound, count in zip(BUCKETS, buckets, strict=True):
                    lines.append(f'cartolog_http_request_seconds_bucket{{{labels},'
                                 f'le="{bound}"}} {count}')
                total, count = self._sums[(method, route)]
                lines += [f'cartolog_http_request_seconds_bucket{{{labels},le="+Inf"}} {count}',
                          f"cartolog_http_request_seconds_sum{{{labels}}} {total:.6f}",
                          f"cartolog_http_request_seconds_count{{{labels}}} {count}"]
        return "\n".join(lines) + "\n"


class EdgeMiddleware:
    """Correlation id in and out, body size limit (413), access log line, metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        given = headers.get(CORRELATION_HEADER, "")
        correlation = given if CORRELATION.match(given) else str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation
        started = time.perf_counter()
        outcome: dict[str, Any] = {"status": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"], outcome["sent"] = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-correlation-id", correlation.encode())]
            await send(message)

        try:
            if self._declared_too_large(headers):
                await self._too_large(send_with_id)
            else:
                await self.app(scope, self._counting(receive), send_with_id)
        except BodyTooLarge:
            if not outcome["sent"]:
                await self._too_large(send_with_id)
        finally:
            self._record(scope, outcome["status"], time.perf_counter() - started, correlation)

    def _declared_too_large(self, headers: dict[str, str]) -> bool:
        length = headers.get("content-length", "")
        return length.isdigit() and int(length) > self.max_body_bytes

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body_bytes:
                raise BodyTooLarge()
            return message
        return counted

    async def _too_large(self, send: Send) -> None:
        body = json.dumps({"type": "about:blank", "title": "Payload too large", "status": 413,
                           "detail": f"request bodies are limited to {self.max_body_bytes} "
                                     "bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, status: int, seconds: float, correlation: str) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        self.metrics.observe(scope["method"], route, status, seconds)
        state = scope.get("state", {})
        log.info(json.dumps({
            "event": "http_request", "method": scope["method"], "route": route,
            "path": scope["path"], "status": status, "duration_ms": round(seconds * 1000, 2),
            "tenant": state.get("tenant"), "correlation_id": correlation}))
