"""The FastAPI application: tenant routes, problem+json errors, health, readiness, metrics."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse

from api import problems
from api.middleware import EdgeMiddleware, Metrics
from api.problems import PROBLEM
from api.reads import LastWrites
from api.routes import (
    bi,
    datasets,
    demand,
    explain,
    exports,
    history,
    merge_requests,
    notifications,
    ogc,
    results,
    run_layers,
    scenarios,
    simulations,
    skims,
    storage,
    tiles,
    uploads,
)
from api.security import RateLimiter
from api.services import ApiServices, ReadinessCheck

__all__ = ["PROBLEM", "ReadinessCheck", "create_app"]
# OpenAPI order. The BI routes stay last but one: registering a target is the write an
# unprojected schema fuzz run can make succeed, after which list reads answer 503.
# A multipart POST /v1/datasets is the upload route's; any other body falls through to
# the JSON route behind it.
ROUTERS = (uploads.router, datasets.router, scenarios.router, simulations.router,
           results.router, tiles.router, history.router, merge_requests.router, explain.router,
           demand.router, skims.router, run_layers.router,
           exports.router, ogc.router, storage.router, bi.router, notifications.router)


def create_app(services: ApiServices) -> FastAPI:
    """Build the app around one process's services."""
    app = FastAPI(title="Cartolog", version="0.1.0",
                  description="Multi-tenant, event-sourced geospatial simulation service. "
                  "The tenant is the subdomain of Host; send a bearer JWT of that tenant.")
    metrics = Metrics()
    app.state.services = services
    app.state.rate_limiter = RateLimiter(services.limits.rate_per_second,
                                         services.limits.rate_burst)
    app.state.last_writes = LastWrites()
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    _operational_routes(app, services, metrics)
    if services.limits.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(services.limits.cors_origins),
                           allow_methods=["*"], allow_headers=["*"],
                           expose_headers=["ETag", "Location", "Retry-After",
                                           "X-Correlation-ID"])
    app.add_middleware(EdgeMiddleware, metrics=metrics,
                       max_body_bytes=services.limits.max_body_bytes)
    return app


def _operational_routes(app: FastAPI, services: ApiServices, metrics: Metrics) -> None:
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """Readiness: the database and the broker answer."""
        checks = {name: _run(check) for name, check in services.readiness_checks.items()}
        if all(result == "ready" for result in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        return JSONResponse(
            {"type": "about:blank", "title": "Service not ready", "status": 503,
             "detail": "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ready"),
             "checks": checks},
            status_code=503, media_type=PROBLEM,
        )

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        """Prometheus metrics: requests, latencies, projection lag."""
        extra = services.metrics_text() if services.metrics_text else ""
        return PlainTextResponse(metrics.render() + extra,
                                 media_type="text/plain; version=0.0.4")

    if services.dev_jwks is not None:
        dev_jwks = services.dev_jwks

        @app.get("/.well-known/jwks.json", tags=["operations"])
        def jwks() -> dict[str, Any]:
            """The dev issuer's public keys (development only)."""
            return dev_jwks()


def _run(check: ReadinessCheck) -> str:
    try:
        check()
    except (OSError, RuntimeError, ValueError) as error:
        return f"not ready: {type(error).__name__}: {error}"[:300]
    return "ready"
