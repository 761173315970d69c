"""Who calls and for which tenant: bearer token, tenant from Host, role, rate limit."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.auth import AuthenticationError
from api.problems import ApiProblem
from api.services import ApiServices
from domain.values import TENANT_NAME, Actor

ROLE_RANK = {"viewer": 1, "editor": 2, "reviewer": 3, "admin": 4}
TENANT_HEADER = "X-Cartolog-Tenant"
bearer = HTTPBearer(auto_error=False, description="JWT from the tenant's identity provider")


@dataclass(frozen=True)
class Caller:
    """An authenticated user acting on their own tenant."""

    tenant: str
    sub: str
    roles: frozenset[str]
    correlation_id: str

    @property
    def actor(self) -> Actor:
        """The domain's view of the caller: `sub` and the request's correlation id."""
        return Actor(self.sub, self.correlation_id)

    def rank(self) -> int:
        """The highest role held (admin > reviewer > editor > viewer)."""
        return max((ROLE_RANK.get(role, 0) for role in self.roles), default=0)


def get_services(request: Request) -> ApiServices:
    """The process's services, set on the app at creation."""
    services: ApiServices = request.app.state.services
    return services


Services = Annotated[ApiServices, Depends(get_services)]


def tenant_of(request: Request, services: ApiServices) -> str | None:
    """The subdomain of Host under the base domain, or the tenant header where allowed."""
    if services.allow_tenant_header and request.headers.get(TENANT_HEADER):
        return request.headers[TENANT_HEADER].strip().lower()
    host = request.headers.get("host", "").split(":")[0].strip().lower().rstrip(".")
    suffix = "." + services.base_domain.lower()
    if host.endswith(suffix):
        label = host.removesuffix(suffix)
        if TENANT_NAME.match(label):
            return label
    return None


def authenticate(request: Request, services: Services,
                 credentials: Annotated[HTTPAuthorizationCredentials | None,
                                        Depends(bearer)]) -> Caller:
    """Verify the token and check that it belongs to the tenant of the request's host."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("a bearer token is required")
    principal = services.verifier.verify(credentials.credentials)
    tenant = tenant_of(request, services)
    if tenant is None:
        raise ApiProblem(404, "Not found", "no tenant: use https://TENANT." + services.base_domain)
    if tenant != principal.tenant:
        raise ApiProblem(403, "Forbidden", "the token was not issued for this tenant")
    services.app.require_tenant(tenant)
    request.state.tenant = tenant
    _rate_limit(request, services, tenant)
    correlation = getattr(request.state, "correlation_id", "") or ""
    return Caller(tenant, principal.sub, principal.roles, correlation)


def require(role: str) -> object:
    """A dependency: the caller, if they hold `role` (or a higher one)."""
    needed = ROLE_RANK[role]

    def check(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
        if caller.rank() < needed:
            raise ApiProblem(403, "Forbidden", f"this needs the {role!r} role")
        return caller
    return Depends(check)


Viewer = Annotated[Caller, require("viewer")]
Editor = Annotated[Caller, require("editor")]
Reviewer = Annotated[Caller, require("reviewer")]
Admin = Annotated[Caller, require("admin")]


class RateLimiter:
    """A token bucket per tenant: `rate` requests per second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, tenant: str) -> float:
        """0 when the request may go ahead, else seconds until it may."""
        with self._lock:
            now = time.monotonic()
            tokens, then = self._buckets.get(tenant, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[tenant] = (tokens - 1.0, now)
                return 0.0
            self._buckets[tenant] = (tokens, now)
            return (1.0 - tokens) / self.rate


def _rate_limit(request: Request, services: ApiServices, tenant: str) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.acquire(tenant)
    if wait > 0:
        raise ApiProblem(429, "Too many requests", f"rate limit of tenant {tenant!r} reached",
                         {"Retry-After": str(max(1, math.ceil(wait)))})
