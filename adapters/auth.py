"""JWT bearer verification against a JWKS (URL with caching and rotation, or file).

Only asymmetric algorithms are accepted (RS256, ES256): `alg: none`, HS256 and any
algorithm/key mismatch are refused, so a public key can never be used as an HMAC secret.
`iss`, `aud`, `exp` are required and checked, `nbf` when present, with a small leeway.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

ALLOWED_ALGORITHMS = ("RS256", "ES256")


class AuthenticationError(Exception):
    """The token is missing, malformed, expired, or not signed by a trusted key."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: subject, tenant and roles from the verified token."""

    sub: str
    tenant: str
    roles: frozenset[str]


@dataclass(frozen=True)
class ClaimMapping:
    """Which claims hold the tenant and the roles (e.g. `custom:tenant`, `cognito:groups`)."""

    tenant_claim: str = "tenant"
    roles_claim: str = "roles"


class JwksSource:
    """Keys by `kid`, from a URL (cached for `ttl`, refetched on an unknown kid) or a file."""

    def __init__(self, fetch: Callable[[], dict[str, Any]], ttl: float = 300.0,
                 min_refresh_interval: float = 10.0) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._min_refresh = min_refresh_interval
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, ttl: float = 300.0) -> JwksSource:
        """JWKS served over HTTP(S), e.g. an identity provider's `/.well-known/jwks.json`."""
        def fetch() -> dict[str, Any]:
            response = httpx.get(url, timeout=5.0)
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            return document
        return cls(fetch, ttl)

    @classmethod
    def from_file(cls, path: Path) -> JwksSource:
        """JWKS in a local JSON file (re-read when the cache expires)."""
        return cls(lambda: json.loads(path.read_text()), ttl=60.0)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> JwksSource:
        """A fixed JWKS (the dev issuer's)."""
        return cls(lambda: document, ttl=float("inf"))

    def key(self, kid: str) -> PyJWK:
        """The key with this id; refreshes once (rate-limited) when it is unknown."""
        with self._lock:
            now = time.monotonic()
            expired = now - self._fetched_at > self._ttl
            unknown = kid not in self._keys and now - self._fetched_at > self._min_refresh
            if expired or unknown:
                self._refresh(now)
            try:
                return self._keys[kid]
            except KeyError:
                raise AuthenticationError("token signed by an unknown key") from None

    def _refresh(self, now: float) -> None:
        try:
            document = self._fetch()
            keys = PyJWKSet.from_dict(document).keys
        except (httpx.HTTPError, OSError, ValueError, jwt.PyJWTError) as error:
            if not self._keys:
                raise AuthenticationError(f"signing keys unavailable: {error}") from None
            return  # keep the keys we have; try again after min_refresh
        finally:
            self._fetched_at = now
        self._keys = {k.key_id: k for k in keys if k.key_id}


class TokenVerifier:
    """Verifies bearer tokens and maps their claims to a Principal."""

    def __init__(self, keys: JwksSource, issuer: str, audience: str,
                 claims: ClaimMapping = ClaimMapping(), leeway: float = 30.0) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.claims = claims
        self.leeway = leeway

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; AuthenticationError otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("malformed token") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise AuthenticationError(f"algorithm {algorithm!r} is not accepted")
        if not isinstance(kid, str):
            raise AuthenticationError("token has no key id (kid)")
        key = self.keys.key(kid)
        if key.algorithm_name != algorithm:
            raise AuthenticationError("token algorithm does not match its key")
        claims = self._decode(token, key, algorithm)
        return self._principal(claims)

    def _decode(self, token: str, key: PyJWK, algorithm: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=[algorithm], audience=self.audience,
                issuer=self.issuer, leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("token not yet valid") from None
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"invalid token: {error}") from None
        return claims

    def _principal(self, claims: dict[str, Any]) -> Principal:
        tenant = claims.get(self.claims.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise AuthenticationError(f"token has no {self.claims.tenant_claim!r} claim")
        roles = claims.get(self.claims.roles_claim, [])
        if isinstance(roles, str):
            roles = roles.replace(",", " ").split()
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthenticationError(f"claim {self.claims.roles_claim!r} is not a list")
        return Principal(sub=str(claims["sub"]), tenant=tenant, roles=frozenset(roles))
