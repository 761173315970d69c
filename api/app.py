"""The FastAPI application: health and readiness for now; tenant routes come later."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import FastAPI
from fastapi.responses import JSONResponse

ReadinessCheck = Callable[[], None]
PROBLEM = "application/problem+json"


def create_app(readiness_checks: Mapping[str, ReadinessCheck]) -> FastAPI:
    """Build the app; each readiness check raises when its dependency is not usable."""
    app = FastAPI(title="Cartolog", version="0.1.0",
                  description="Multi-tenant, event-sourced geospatial simulation service.")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Readiness: the database and the broker answer."""
        checks = {name: _run(check) for name, check in readiness_checks.items()}
        if all(result == "ready" for result in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        return JSONResponse(
            {"type": "about:blank", "title": "Service not ready", "status": 503,
             "detail": "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ready"),
             "checks": checks},
            status_code=503, media_type=PROBLEM,
        )

    return app


def _run(check: ReadinessCheck) -> str:
    try:
        check()
    except (OSError, RuntimeError, ValueError) as error:
        return f"not ready: {type(error).__name__}: {error}"[:300]
    return "ready"
