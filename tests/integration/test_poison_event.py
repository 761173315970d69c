"""One tenant's poison event stops no projection for the others (real PostGIS and broker).

The attack: an add_link edit whose link id holds NUL, which PostgreSQL cannot store in
text. Whether the API refuses it (422, nothing stored) or not, the same event is also
written the way a log from before that check holds it: through the aggregate, past the
domain's rules. The projector must record it and go on: the other tenant reads its
write, `projections status` shows the error and `log verify` names the event.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from domain.scenario import Scenario
from domain.values import Link
from infra.http import ApiSettings, build_api
from infra.wiring import Container
from tests.conftest import REPO
from tests.integration.api.conftest import Api
from tests.integration.conftest import OPERATOR
from tests.integration.logcheck import wait_for
from tests.integration.projections.conftest import (
    projector_env,
    relay_and_projector,
    wait_caught_up,
)
from tests.unit.test_domain import tiny_network

NUL_LINK = {"id": "nul\u0000link", "from_node": 1, "to_node": 3, "capacity": 10,
            "length": 1, "free_flow_time": 1}


@pytest.fixture()
def api(own_container: Container) -> Iterator[Api]:
    settings = ApiSettings(read_wait_s=20, rate_per_second=1000, rate_burst=1000)
    with TestClient(build_api(own_container, settings), base_url="http://acme.cartolog.example",
                    raise_server_exceptions=False) as client:
        yield Api(own_container, client)


def write_poison_edit(container: Container, tenant: str, scenario_id: uuid.UUID) -> None:
    """Store the NUL add_link past the domain's checks, as an old log may hold it."""
    scenario = container.app.get_scenario(tenant, scenario_id)
    link: dict[str, Any] = {**asdict(Link("x", 1, 3, 10.0, 1.0, 1.0)), "id": NUL_LINK["id"],
                            "geometry": []}
    scenario.trigger_event(Scenario.LinkAdded, tenant_id=tenant, actor=OPERATOR.sub,
                           correlation_id=OPERATOR.correlation_id, link=link)
    container.app.save(scenario)


def poison_positions(container: Container) -> list[int]:
    with container.engine.connect() as connection:
        return [int(p) for p in connection.execute(text(
            "SELECT id FROM cartolog_events WHERE topic LIKE '%LinkAdded' ORDER BY id"
        )).scalars()]


def cli(container: Container, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=REPO,
                          env=projector_env(container), capture_output=True, text=True,
                          timeout=300, check=False)


def test_a_nul_edit_stops_no_tenant_and_is_named(own_container: Container, api: Api) -> None:
    container = own_container
    with relay_and_projector(container):
        scenario = api.scenario("acme")
        answer = api.post(f"/v1/scenarios/{scenario}/edits",
                          {"edits": [{"op": "add_link", "link": NUL_LINK}]},
                          headers={"If-Match": '"1"'})
        if answer.status_code != 200:  # refused at the boundary: nothing may be stored
            assert 400 <= answer.status_code < 500, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert poison_positions(container) == []
            write_poison_edit(container, "acme", uuid.UUID(scenario))
        (position,) = poison_positions(container)

        theirs = api.scenario("rival")
        listed = api.get("/v1/scenarios", tenant="rival")
        assert listed.status_code == 200, listed.text
        assert [item["id"] for item in listed.json()["items"]] == [theirs]
        wait_for(lambda: _error_rows(container) != [], 30, "the poison event to be recorded")

    assert _error_rows(container) == [("acme", "Scenario.LinkAdded", position)]
    status = cli(container, "projections", "status", "--json")
    assert status.returncode == 0, status.stderr
    (read_model,) = [s for s in json.loads(status.stdout) if s["name"] == "read_model"]
    assert (read_model["state"], read_model["errors"]) == ("running", 1)
    assert "NUL" in read_model["last_error"]

    verify = cli(container, "log", "verify", "--json")
    assert verify.returncode == 1, verify.stderr
    problems = json.loads(verify.stdout)["problems"]
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"projection read_model: event at store position {position} "
                                  f"(Scenario.LinkAdded of {scenario} v2, tenant acme;")
    assert "NUL" in problems[0]

    retried = cli(container, "projections", "retry", "read_model")  # nothing fixed it yet
    assert retried.returncode == 1, retried.stderr
    assert retried.stdout.startswith("read_model: 0 applied, 1 still failing, 0 not in the store")
    assert _error_rows(container) == [("acme", "Scenario.LinkAdded", position)]


def test_retry_applies_what_failed_while_a_blob_was_missing(own_container: Container) -> None:
    container = own_container
    network = tiny_network()
    dataset = container.app.import_dataset("acme", "tiny", network, OPERATOR)
    with container.engine.begin() as connection:
        connection.execute(text("CREATE TABLE saved_blobs AS SELECT * FROM blobs "
                                "WHERE sha256 = :s"), {"s": network.sha256()})
        connection.execute(text("DELETE FROM blobs WHERE sha256 = :s"), {"s": network.sha256()})
    with relay_and_projector(container, ["read_model"]):
        wait_caught_up(container, ["read_model"])
    assert [kind for _, kind, _ in _error_rows(container)] == ["Dataset.Imported"]
    with container.engine.begin() as connection:  # the fix: the blob is back
        connection.execute(text("INSERT INTO blobs SELECT * FROM saved_blobs"))

    retried = cli(container, "projections", "retry", "read_model")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout == "read_model: 1 applied, 0 still failing, 0 not in the store\n"
    assert _error_rows(container) == []
    with container.engine.connect() as connection:
        links = connection.execute(text(
            "SELECT count(*) FROM dataset_links WHERE dataset_id = :d"), {"d": dataset}).scalar()
    assert links == len(network.links)


def _error_rows(container: Container) -> list[tuple[str, str, int]]:
    with container.engine.connect() as connection:
        return [(t, k, int(p)) for t, k, p in connection.execute(text(
            "SELECT tenant_id, event_type, position FROM projection_errors "
            "WHERE projection = 'read_model'")).all()]
