"""The development token issuer: a local signing key, its JWKS, and `cartolog token issue`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ROLES = ("viewer", "editor", "reviewer", "admin")


class DevIssuer:
    """Signs RS256 tokens with a key kept in `key_file` (created on first use, mode 0600)."""

    def __init__(self, key_file: Path, issuer: str, audience: str,
                 tenant_claim: str = "tenant", roles_claim: str = "roles") -> None:
        self.key_file = key_file
        self.issuer = issuer
        self.audience = audience
        self.tenant_claim = tenant_claim
        self.roles_claim = roles_claim
        self._private_key = _load_or_create(key_file)
        public_pem = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = "dev-" + hashlib.sha256(public_pem).hexdigest()[:16]

    def issue(self, tenant: str, role: str, sub: str | None = None,
              ttl: dt.timedelta = dt.timedelta(hours=12)) -> str:
        """A signed token for `tenant` with `role` (each role implies the ones before it)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        now = dt.datetime.now(dt.UTC)
        claims = {
            "iss": self.issuer, "aud": self.audience, "sub": sub or f"dev-{role}@{tenant}",
            "iat": now, "nbf": now, "exp": now + ttl, self.tenant_claim: tenant,
            self.roles_claim: list(ROLES[: ROLES.index(role) + 1]),
        }
        return jwt.encode(claims, self._private_key, algorithm="RS256",
                          headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        """The public key set verifiers use."""
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self._private_key.public_key()))
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        return {"keys": [jwk]}


def _load_or_create(key_file: Path) -> rsa.RSAPrivateKey:
    if key_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_file} does not hold an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _load_or_create(key_file)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    return key
