"""RFC 9457 problem details: one place maps every error to a status and a body."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.auth import AuthenticationError
from domain.errors import (
    AlreadyExists,
    InvalidCommand,
    InvalidTransition,
    NotAllowed,
    NotFound,
    QuotaExceeded,
    UnknownTenant,
    VersionConflict,
)

PROBLEM = "application/problem+json"


class ApiProblem(Exception):
    """An HTTP-level refusal (403, 413, 428, 429 ...) with problem details."""

    def __init__(self, status: int, title: str, detail: str = "",
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}
        self.extra = extra


def problem(status: int, title: str, detail: str = "", headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _domain(status: int, title: str) -> Any:
    async def handle(request: Request, error: Exception) -> JSONResponse:
        problems = getattr(error, "problems", None)
        extra = {"problems": problems} if problems else {}
        return problem(status, title, str(error), **extra)
    return handle


async def _api_problem(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiProblem)
    return problem(error.status, error.title, error.detail, error.headers, **error.extra)


async def _authentication(request: Request, error: Exception) -> JSONResponse:
    return problem(401, "Unauthorized", str(error), {"WWW-Authenticate": "Bearer"})


async def _validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [_described(e) for e in error.errors()]
    return problem(422, "Invalid request", "the request does not match its schema",
                   problems=problems)


def _described(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"])
    cause = (error.get("ctx") or {}).get("error") if error.get("type") == "json_invalid" else None
    return f"{where}: {error['msg']}" + (f": {cause}" if cause else "")


async def _http(request: Request, error: Exception) -> JSONResponse:
    """Starlette's own refusals (no route, wrong method, an unreadable body): the status's
    phrase as the title, and what Starlette said as the detail."""
    assert isinstance(error, StarletteHTTPException)
    try:
        title = HTTPStatus(error.status_code).phrase
    except ValueError:
        title = str(error.detail)
    detail = str(error.detail) if str(error.detail) != title else ""
    if error.status_code == 400 and not detail:
        detail = "the request body could not be read"
    return problem(error.status_code, title, detail, dict(error.headers or {}))


def install(app: FastAPI) -> None:
    """Register the handlers: domain errors, auth, validation and plain HTTP errors."""
    # Unknown tenant and another tenant's resource are indistinguishable from missing ones.
    app.add_exception_handler(NotFound, _domain(404, "Not found"))
    app.add_exception_handler(UnknownTenant, _domain(404, "Not found"))
    app.add_exception_handler(VersionConflict, _domain(412, "Precondition failed"))
    app.add_exception_handler(InvalidCommand, _domain(422, "Invalid command"))
    app.add_exception_handler(InvalidTransition, _domain(409, "Conflict"))
    app.add_exception_handler(NotAllowed, _domain(403, "Forbidden"))
    app.add_exception_handler(AlreadyExists, _domain(409, "Conflict"))
    app.add_exception_handler(QuotaExceeded, _domain(507, "Storage quota exceeded"))
    app.add_exception_handler(AuthenticationError, _authentication)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
