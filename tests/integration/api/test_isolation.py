"""Isolation matrix: every endpoint and bad credential answers 401, 403 or 404, never data."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from adapters.dev_issuer import DevIssuer
from infra.http import build_api
from infra.settings import ApiSettings
from infra.wiring import Container
from tests.integration.api.conftest import Api, tiny_geojson
from tests.integration.conftest import OPERATOR
from tests.integration.projections.conftest import relay_and_projector, wait_caught_up

MARKER = "acme-confidential-7f3a"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: Any = None
    has_id: bool = True
    writes: bool = False
    role: str = "viewer"
    ok: int = 200  # what the owner gets, in this order, with the projector running


def endpoints(ids: dict[str, str]) -> list[Endpoint]:
    d, s, r, t = ids["dataset"], ids["scenario"], ids["run"], ids["target"]
    f, m = ids["fork"], ids["merge_request"]
    edit = {"edits": [{"op": "close_link", "link_id": "a"}]}
    return [
        Endpoint("GET", "/v1/datasets", has_id=False),
        Endpoint("GET", f"/v1/datasets/{d}"),
        Endpoint("POST", "/v1/datasets", tiny_geojson(), has_id=False, writes=True, ok=201),
        Endpoint("POST", "/v1/scenarios", {"name": "x", "dataset_id": d}, writes=True, ok=201),
        Endpoint("POST", "/v1/scenarios", {"name": "x", "fork_of": s}, writes=True, ok=201),
        Endpoint("GET", "/v1/scenarios", has_id=False),
        Endpoint("GET", f"/v1/scenarios/{s}"),
        Endpoint("GET", f"/v1/scenarios/{s}?version=1"),
        Endpoint("POST", f"/v1/scenarios/{s}/edits", edit, writes=True),
        Endpoint("GET", f"/v1/scenarios/{s}/history"),
        Endpoint("POST", f"/v1/scenarios/{s}/simulations", {"model": "builtin"}, writes=True,
                 ok=202),
        Endpoint("GET", f"/v1/simulations/{r}"),
        Endpoint("DELETE", f"/v1/simulations/{r}", writes=True, ok=202),
        Endpoint("GET", f"/v1/simulations/{r}/links", ok=409),  # cancelled: no results
        Endpoint("GET", f"/v1/simulations/{r}/zones", ok=409),
        Endpoint("GET", f"/v1/simulations/{r}/indicators", ok=409),
        Endpoint("GET", f"/v1/compare?a={r}&b={r}", ok=409),
        Endpoint("GET", f"/v1/compare/explain?a={r}&b={r}&link=a", ok=409),
        Endpoint("GET", f"/v1/simulations/{r}/skims", ok=409),
        Endpoint("GET", f"/v1/simulations/{r}/select-link/x", ok=409),
        Endpoint("GET", f"/v1/simulations/{r}/select-link/x/links", ok=409),
        Endpoint("GET", f"/v1/simulations/{r}/class-flows", ok=409),
        Endpoint("GET", f"/v1/scenarios/{s}/demand", ok=404),  # the gravity model: no matrix
        Endpoint("POST", "/v1/compare/explain", {"a": r, "b": r, "link": "a"}, writes=True,
                 ok=409),
        Endpoint("GET", f"/v1/tiles/links/0/0/0.mvt?scenario={s}"),
        Endpoint("GET", f"/v1/tiles/link_results/0/0/0.mvt?run={r}", ok=409),
        Endpoint("GET", "/v1/bi/targets", has_id=False),
        Endpoint("POST", "/v1/bi/targets", {"name": "x"}, has_id=False, writes=True,
                 role="admin", ok=201),
        Endpoint("POST", f"/v1/bi/targets/{t}/rebuilds", writes=True, role="admin", ok=202),
        Endpoint("GET", "/v1/notifications?duration=0.2", has_id=False),
        Endpoint("GET", "/v1/simulations", has_id=False),
        Endpoint("GET", f"/v1/simulations?scenario={s}"),
        Endpoint("GET", f"/v1/scenarios/{s}/simulations"),
        Endpoint("GET", f"/v1/scenarios/{s}/diff?from=1"),
        # The edit above moved the scenario to version 2, so If-Match "1" is stale.
        Endpoint("POST", f"/v1/scenarios/{s}/archive", {"reason": "x"}, writes=True, ok=412),
        Endpoint("POST", f"/v1/scenarios/{s}/restore", {"reason": "x"}, writes=True, ok=412),
        Endpoint("POST", f"/v1/scenarios/{f}/merge-requests", {"title": "x"}, writes=True,
                 ok=201),
        Endpoint("GET", "/v1/merge-requests", has_id=False),
        Endpoint("GET", f"/v1/merge-requests?scenario={f}"),
        Endpoint("GET", f"/v1/merge-requests/{m}"),
        Endpoint("POST", f"/v1/merge-requests/{m}/reviews", {"verdict": "approved"},
                 writes=True, role="reviewer"),
        Endpoint("POST", f"/v1/merge-requests/{m}/resolutions",
                 {"subject": "link:a", "take": "fork"}, writes=True, ok=422),  # no conflict
        Endpoint("POST", f"/v1/merge-requests/{m}/merge", writes=True),
        Endpoint("POST", f"/v1/merge-requests/{m}/close", {}, writes=True, ok=409),  # merged
    ]


@pytest.fixture()
def api(container: Container) -> Iterator[Api]:
    """The API with the relay and projector running, so every read can be answered."""
    settings = ApiSettings(read_wait_s=30, rate_per_second=1000, rate_burst=1000)
    with relay_and_projector(container), TestClient(
            build_api(container, settings), base_url="http://acme.cartolog.example",
            raise_server_exceptions=False) as client:
        yield Api(container, client)


@pytest.fixture()
def acme(api: Api, container: Container) -> dict[str, str]:
    body = tiny_geojson(MARKER)
    dataset = api.post("/v1/datasets", body).json()["id"]
    scenario = api.post("/v1/scenarios", {"name": MARKER, "dataset_id": dataset}).json()["id"]
    run = api.post(f"/v1/scenarios/{scenario}/simulations",
                   {"model": "builtin", "parameters": {"note": MARKER}}).json()["id"]
    target = container.app.register_bi_target("acme", f"{MARKER}-{uuid.uuid4().hex[:8]}",
                                                 "builtin", OPERATOR)
    fork = api.post("/v1/scenarios", {"name": MARKER, "fork_of": scenario}).json()["id"]
    api.post(f"/v1/scenarios/{fork}/edits", {"edits": [{"op": "close_link", "link_id": "b"}]},
             headers={"If-Match": '"1"'})
    request = api.post(f"/v1/scenarios/{fork}/merge-requests", {"title": MARKER}).json()["id"]
    wait_caught_up(container)
    return {"dataset": dataset, "scenario": scenario, "run": run, "target": str(target),
            "fork": fork, "merge_request": request}


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def bad_tokens(container: Container, tmp_path: Path) -> dict[str, str]:
    s, issuer = container.settings, container.dev_issuer
    good = issuer.issue("acme", "admin")
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = _b64({**claims, "sub": "mallory", "roles": ["viewer", "editor", "admin"]})
    other_key = DevIssuer(tmp_path / "other.pem", s.jwt_issuer, s.jwt_audience)
    return {
        "expired": issuer.issue("acme", "admin", ttl=dt.timedelta(minutes=-10)),
        "wrong_audience": DevIssuer(Path(s.dev_key_file), s.jwt_issuer, "elsewhere")
        .issue("acme", "admin"),
        "wrong_issuer": DevIssuer(Path(s.dev_key_file), "https://evil.example",
                                  s.jwt_audience).issue("acme", "admin"),
        "tampered": f"{header}.{forged}.{signature}",
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': issuer.kid})}.{payload}.",
        "hs256_with_public_key": hs256_with_public_key(issuer, claims),
        "unknown_key": other_key.issue("acme", "admin"),
        "garbage": "not-a-jwt",
    }


def hs256_with_public_key(issuer: DevIssuer, claims: dict[str, Any]) -> str:
    """The key-confusion attack: HMAC-sign with the RSA public key's PEM as the secret."""
    pem = issuer._private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': issuer.kid})}.{_b64(claims)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def call(api: Api, endpoint: Endpoint, headers: dict[str, str]) -> Any:
    return api.client.request(endpoint.method, endpoint.path, headers=headers,
                              json=endpoint.body)


def assert_no_leak(response: Any, ids: dict[str, str]) -> None:
    assert MARKER not in response.text


def test_bad_tokens_are_401(api: Api, container: Container, acme: dict[str, str],
                            tmp_path: Path) -> None:
    tokens = {"missing": None, **bad_tokens(container, tmp_path)}
    for endpoint in endpoints(acme):
        for name, token in tokens.items():
            headers = {"Host": "acme.cartolog.example", "If-Match": '"1"'}
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            response = call(api, endpoint, headers)
            assert response.status_code == 401, (name, endpoint, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert_no_leak(response, acme)


def test_another_tenants_token_on_this_host_is_403(api: Api, acme: dict[str, str]) -> None:
    for endpoint in endpoints(acme):
        headers = {**api.headers("rival", "admin"), "Host": "acme.cartolog.example",
                   "If-Match": '"1"'}
        response = call(api, endpoint, headers)
        assert response.status_code == 403, (endpoint, response.text)
        assert_no_leak(response, acme)


def test_another_tenant_on_its_own_host_gets_404(api: Api, acme: dict[str, str]) -> None:
    for endpoint in endpoints(acme):
        response = call(api, endpoint, {**api.headers("rival", "admin"), "If-Match": '"1"'})
        if endpoint.has_id:
            assert response.status_code == 404, (endpoint, response.text)
        else:
            # Its own lists and writes: rival's own data, its reads waiting for its writes.
            assert response.status_code == endpoint.ok, (endpoint, response.text)
        assert_no_leak(response, acme)


def test_a_viewer_cannot_write_and_an_editor_cannot_manage_bi(api: Api,
                                                               acme: dict[str, str]) -> None:
    for endpoint in endpoints(acme):
        if not endpoint.writes:
            continue
        below = {"viewer": [], "editor": ["viewer"], "reviewer": ["viewer", "editor"],
                 "admin": ["viewer", "editor"]}
        roles = below[endpoint.role] or ["viewer"]
        for role in roles:
            response = call(api, endpoint, {**api.headers("acme", role), "If-Match": '"1"'})
            assert response.status_code == 403, (role, endpoint, response.text)
            assert response.headers["content-type"] == "application/problem+json"


def test_the_owner_reaches_every_endpoint(api: Api, acme: dict[str, str]) -> None:
    for endpoint in endpoints(acme):
        response = call(api, endpoint, {**api.headers("acme", "admin"), "If-Match": '"1"'})
        # Exactly the status it promises: success, or the 409/412/422 its order leads to.
        assert response.status_code == endpoint.ok, (endpoint, response.text)
