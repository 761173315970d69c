"""BI targets over HTTP: URLs checked at registration, private hosts refused unless allowed,
and the list read once the bi_sync projection holds the caller's last write (decision 0712)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.bi_connectors import HOST_RULE
from infra import projections_wiring as wiring
from infra.http import build_api
from infra.settings import ApiSettings, Settings
from infra.wiring import Container, build
from tests.integration.api.conftest import Api, is_problem
from tests.integration.conftest import OPERATOR, stored_events
from tests.integration.logcheck import wait_for
from tests.integration.projections.conftest import relay_and_projector
from tests.integration.projections.test_bi_sync import BiTool, serve


def external(name: str, trigger_url: str, status_url: str | None = None) -> dict[str, Any]:
    return {"name": name, "kind": "external", "trigger_url": trigger_url,
            "status_url": status_url or trigger_url}


@pytest.mark.parametrize(("trigger_url", "problem"), [
    ("http://[::1", "trigger_url is not a valid URL"),
    ("http://bi.example:99999/b", "trigger_url is not a valid URL"),
    ("ftp://bi.example/b", "trigger_url must be an http:// or https:// URL"),
    ("http:///b", "trigger_url must name a host"),
])
def test_an_invalid_url_is_a_422_and_stores_nothing(api: Api, container: Container,
                                                   trigger_url: str, problem: str) -> None:
    before = stored_events(container)
    response = api.post("/v1/bi/targets", external("dash", trigger_url,
                                                   "https://93.184.216.34/status"),
                        role="admin")
    assert is_problem(response, 422)["problems"] == [problem]
    assert stored_events(container) == before


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/b", "http://localhost/b", "http://[::1]/b", "http://0.0.0.0/b",
    "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/b",
    "http://10.0.0.7/b", "http://[fe80::1]/b", "http://224.0.0.1/b", "http://2130706433/b",
])
def test_a_private_host_is_refused_by_default(api: Api, container: Container,
                                              url: str) -> None:
    before = stored_events(container)
    response = api.post("/v1/bi/targets", external("dash", url), role="admin")
    assert is_problem(response, 422)["problems"] == [f"trigger_url: {HOST_RULE}",
                                                     f"status_url: {HOST_RULE}"]
    assert stored_events(container) == before


@pytest.fixture()
def private_api(settings: Settings) -> Iterator[Api]:
    """The API of a deployment that sets CARTOLOG_BI_ALLOW_PRIVATE_HOSTS=true."""
    allowing = build(settings.model_copy(update={"bi_allow_private_hosts": True}))
    app = build_api(allowing, ApiSettings(read_wait_s=0.2, rate_per_second=1000,
                                          rate_burst=1000))
    with TestClient(app, base_url="http://acme.cartolog.example",
                    raise_server_exceptions=False) as client:
        yield Api(allowing, client)
    allowing.close()


def test_a_private_host_is_allowed_with_the_setting(container: Container,
                                                    private_api: Api) -> None:
    response = private_api.post("/v1/bi/targets", external("dash", "http://127.0.0.1:8080/b"),
                                role="admin")
    assert response.status_code == 201, response.text


def test_a_private_target_stored_anyway_is_not_called_by_default(api: Api,
                                                                 container: Container) -> None:
    tool = BiTool(build_seconds=0.0)
    container.app.import_dataset("acme", "tiny", _network(), OPERATOR)
    with serve(tool) as url:
        # Registered past the API (a target stored before this policy, or a host name that
        # resolved to a public address then): the manager checks again when it connects.
        container.app.register_bi_target("acme", "dash", "external", OPERATOR,
                                         f"{url}/builds", f"{url}/status")
        manager = wiring.bi_manager(container, interval=0.05)
        thread = threading.Thread(target=manager.run, daemon=True)
        with relay_and_projector(container):
            thread.start()
            try:
                wait_for(lambda: _listed(api).get("last_error") is not None, 60,
                         "the refusal to be recorded")
            finally:
                manager.stop()
                thread.join(30)
    target = _listed(api)
    assert (target["last_error"], target["running_build"]) == (HOST_RULE, None)
    assert tool.calls == 0


def test_the_list_waits_for_the_bi_sync_projection(api: Api, container: Container) -> None:
    with relay_and_projector(container, ["read_model"]):
        created = api.post("/v1/bi/targets", {"name": "dash"}, role="admin")
        assert created.status_code == 201, created.text
        # Another read waits for the read model, which has the write ...
        assert api.get("/v1/scenarios?wait=30").status_code == 200
        # ... but the targets are bi_sync's, which does not run yet: not an empty list.
        behind = is_problem(api.get("/v1/bi/targets?wait=0"), 503)
        assert "caught up" in behind["detail"]
    with relay_and_projector(container, ["bi_sync"]):
        listed = api.get("/v1/bi/targets?wait=30")
    assert listed.status_code == 200, listed.text
    assert [t["name"] for t in listed.json()["items"]] == ["dash"]


def _listed(api: Api) -> dict[str, Any]:
    response = api.get("/v1/bi/targets?wait=30")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items[0] if items else {}


def _network() -> Any:
    from tests.unit.test_domain import tiny_network

    return tiny_network()
