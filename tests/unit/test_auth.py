"""Bearer token verification: what is accepted and every way a token is refused."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from adapters.auth import AuthenticationError, ClaimMapping, JwksSource, TokenVerifier
from adapters.dev_issuer import DevIssuer

ISS, AUD = "https://idp.example/pool", "cartolog"


@pytest.fixture()
def issuer(tmp_path: Path) -> DevIssuer:
    return DevIssuer(tmp_path / "key.pem", ISS, AUD)


def verifier(jwks: dict[str, Any], **claims: str) -> TokenVerifier:
    return TokenVerifier(JwksSource.from_document(jwks), ISS, AUD, ClaimMapping(**claims))


def claims(**overrides: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    base = {"iss": ISS, "aud": AUD, "sub": "u1", "tenant": "acme", "roles": ["viewer"],
            "exp": now + dt.timedelta(minutes=5), "nbf": now}
    base.update(overrides)
    return base


def test_dev_issuer_token_is_accepted_with_roles(issuer: DevIssuer) -> None:
    principal = verifier(issuer.jwks()).verify(issuer.issue("acme", "editor", sub="ann"))
    assert (principal.sub, principal.tenant) == ("ann", "acme")
    assert principal.roles == {"viewer", "editor"}


def test_key_file_is_reused_and_private(issuer: DevIssuer) -> None:
    again = DevIssuer(issuer.key_file, ISS, AUD)
    assert again.kid == issuer.kid
    assert issuer.key_file.stat().st_mode & 0o077 == 0


def test_es256_from_another_provider_with_custom_claims() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="ec1", alg="ES256")
    token = jwt.encode(claims(**{"custom:tenant": "acme", "cognito:groups": ["admin"]}),
                       key, algorithm="ES256", headers={"kid": "ec1"})
    principal = verifier({"keys": [jwk]}, tenant_claim="custom:tenant",
                         roles_claim="cognito:groups").verify(token)
    assert principal.tenant == "acme" and principal.roles == {"admin"}


def b64(part: dict[str, Any]) -> str:
    text = json.dumps(part, default=lambda moment: int(moment.timestamp()))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def test_alg_none_is_refused(issuer: DevIssuer) -> None:
    token = f"{b64({'alg': 'none', 'kid': issuer.kid})}.{b64(claims())}."
    with pytest.raises(AuthenticationError, match="algorithm 'none'"):
        verifier(issuer.jwks()).verify(token)


def test_hs256_signed_with_the_public_key_is_refused(issuer: DevIssuer) -> None:
    public_pem = issuer._private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    # The classic key-confusion forgery: HMAC with the (public) RSA key as the secret.
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': issuer.kid})}.{b64(claims())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(AuthenticationError, match="HS256"):
        verifier(issuer.jwks()).verify(token)


def test_tampered_payload_is_refused(issuer: DevIssuer) -> None:
    header, _, signature = issuer.issue("acme", "viewer").split(".")
    forged = f"{header}.{b64(claims(tenant='rival', roles=['admin']))}.{signature}"
    with pytest.raises(AuthenticationError, match="invalid token"):
        verifier(issuer.jwks()).verify(forged)


def test_unknown_kid_is_refused(issuer: DevIssuer, tmp_path: Path) -> None:
    other = DevIssuer(tmp_path / "other.pem", ISS, AUD)
    with pytest.raises(AuthenticationError, match="unknown key"):
        verifier(issuer.jwks()).verify(other.issue("acme", "viewer"))


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"exp": dt.timedelta(minutes=-5)}, "expired"),
    ({"nbf": dt.timedelta(minutes=5)}, "not yet valid"),
    ({"iss": "https://evil.example"}, "invalid token"),
    ({"aud": "someone-else"}, "invalid token"),
    ({"tenant": ""}, "no 'tenant' claim"),
])
def test_claims_are_checked(issuer: DevIssuer, overrides: dict[str, Any], reason: str) -> None:
    now = dt.datetime.now(dt.UTC)  # offsets are resolved now, not at collection time
    overrides = {k: now + v if isinstance(v, dt.timedelta) else v for k, v in overrides.items()}
    token = jwt.encode(claims(**overrides), issuer._private_key, algorithm="RS256",
                       headers={"kid": issuer.kid})
    with pytest.raises(AuthenticationError, match=reason):
        verifier(issuer.jwks()).verify(token)


def test_small_clock_skew_is_tolerated(issuer: DevIssuer) -> None:
    token = jwt.encode(claims(nbf=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)),
                       issuer._private_key, algorithm="RS256", headers={"kid": issuer.kid})
    assert verifier(issuer.jwks()).verify(token).sub == "u1"


def test_rotated_key_is_fetched_on_first_sight(issuer: DevIssuer, tmp_path: Path) -> None:
    rotated = DevIssuer(tmp_path / "rotated.pem", ISS, AUD)
    served = [issuer.jwks()]
    fetches = []

    def fetch() -> dict[str, Any]:
        fetches.append(1)
        return served[-1]

    source = JwksSource(fetch, ttl=3600, min_refresh_interval=0)
    check = TokenVerifier(source, ISS, AUD)
    assert check.verify(issuer.issue("acme", "viewer")).tenant == "acme"
    served.append({"keys": issuer.jwks()["keys"] + rotated.jwks()["keys"]})
    assert check.verify(rotated.issue("acme", "viewer")).tenant == "acme"
    assert len(fetches) == 2
