"""A tenant's storage quota (decision 0717): what one tenant stores cannot fill the database
every tenant shares. Refused writes are 507 problems that store nothing, bytes a tenant
already holds cost nothing again, and one tenant's full quota leaves another's alone."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from adapters.blobs import PostgresBlobStore
from domain.errors import AlreadyExists, QuotaExceeded
from infra.http import build_api
from infra.settings import ApiSettings, Settings
from infra.wiring import Container, build
from tests.integration.api.conftest import Api, is_problem, tiny_geojson
from tests.integration.conftest import OPERATOR, stored_events


def tenants(count: int) -> list[str]:
    """Tenants of this test alone: the quota counts everything a tenant ever stored."""
    stem = uuid.uuid4().hex[:8]
    return [f"quota{stem}{i}" for i in range(count)]


def blobs_of(engine: Any, tenant: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM blobs WHERE tenant_id = :t"),
                                      {"t": tenant}).scalar_one())


def test_the_quota_counts_new_bytes_only_and_each_tenant_apart(container: Container) -> None:
    store = PostgresBlobStore(container.engine, quota_bytes=1000)
    first, second = tenants(2)
    kept = store.put(first, b"a" * 600)
    assert store.put(first, b"a" * 600) == kept  # held already: costs nothing
    with pytest.raises(QuotaExceeded) as refused:
        store.put(first, b"b" * 500)
    assert "past its storage quota of 0.00 MiB" in str(refused.value)
    assert "nothing was stored" in str(refused.value)
    assert blobs_of(container.engine, first) == 1 and store.used_bytes(first) == 600
    store.put(second, b"b" * 1000)  # the other tenant's quota is its own
    assert store.used_bytes(second) == 1000


def test_two_writers_cannot_both_take_the_last_free_bytes(container: Container) -> None:
    store = PostgresBlobStore(container.engine, quota_bytes=1000)
    (tenant,) = tenants(1)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def put(fill: bytes) -> None:
        start.wait(10)
        try:
            store.put(tenant, fill * 600)
            outcomes.append("stored")
        except QuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=put, args=(bytes([65 + i]),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["refused"] * 7 + ["stored"]
    assert store.used_bytes(tenant) == 600


@contextlib.contextmanager
def quota_api(settings: Settings, quota_mb: float, names: list[str]) -> Iterator[Api]:
    built = build(settings.model_copy(update={"tenant_storage_mb": quota_mb}))
    for name in names:
        with contextlib.suppress(AlreadyExists):
            built.app.register_tenant(name, OPERATOR)
    limits = ApiSettings(read_wait_s=0.2, rate_per_second=1000, rate_burst=1000)
    try:
        with TestClient(build_api(built, limits), raise_server_exceptions=False) as client:
            yield Api(built, client)
    finally:
        built.close()


def variant(i: int) -> dict[str, Any]:
    """The tiny network with its first link's capacity changed: new bytes to store."""
    body = tiny_geojson(f"v{i}")
    body["links"]["features"][0]["properties"]["capacity"] = 1000.0 + i
    return body


def test_an_import_past_the_quota_is_a_507_and_stores_nothing(settings: Settings) -> None:
    full, other = tenants(2)
    with quota_api(settings, 0.01, [full, other]) as api:  # 10 KiB: a few tiny networks
        refused = None
        for i in range(40):  # bounded: each network takes some hundreds of bytes at least
            before = stored_events(api.container)
            response = api.post("/v1/datasets", variant(i), tenant=full)
            if response.status_code != 201:
                refused = response
                break
        assert refused is not None, "10 KiB held 40 networks"
        assert stored_events(api.container) == before  # no event for the refused import
        body = is_problem(refused, 507)
        assert body["title"] == "Storage quota exceeded"
        assert "past its storage quota of 0.01 MiB" in body["detail"]
        assert other not in body["detail"]
        assert blobs_of(api.container.engine, full) == i  # nor a blob
        again = api.post("/v1/datasets", variant(0), tenant=full)  # stored bytes: no cost
        assert again.status_code == 201, again.text
        assert api.post("/v1/datasets", variant(0), tenant=other).status_code == 201


def test_a_tenant_reads_its_own_storage_against_its_quota(settings: Settings) -> None:
    first, second = tenants(2)
    with quota_api(settings, 1.0, [first, second]) as api:
        empty = api.get("/v1/storage", tenant=first)
        assert empty.status_code == 200, empty.text
        assert empty.json() == {"used_bytes": 0, "quota_bytes": 2**20, "free_bytes": 2**20}
        assert api.post("/v1/datasets", variant(1), tenant=first).status_code == 201
        used = api.container.blobs.used_bytes(first)
        assert used > 0
        assert api.get("/v1/storage", tenant=first).json() == {
            "used_bytes": used, "quota_bytes": 2**20, "free_bytes": 2**20 - used}
        assert api.get("/v1/storage", tenant=second).json()["used_bytes"] == 0
    with quota_api(settings, 0, [first]) as api:  # 0: no limit
        assert api.get("/v1/storage", tenant=first).json() == {
            "used_bytes": used, "quota_bytes": None, "free_bytes": None}


def test_the_operator_sets_one_tenants_quota_apart(settings: Settings) -> None:
    """decision 0719: `cartolog tenant quota` records the figure on the tenant; the API, which
    was already running, applies it to the next file and reports it."""
    from tests.integration.test_cli import cartolog

    small, other = tenants(2)
    with quota_api(settings, 1.0, [small, other]) as api:
        url = settings.database_url
        done = cartolog("tenant", "quota", small, "--mb", "0.0001", database_url=url)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"tenant {small}: quota 0 MiB (its own); 0.0 MiB stored")
        before = stored_events(api.container)
        refused = is_problem(api.post("/v1/datasets", variant(1), tenant=small), 507)
        assert "past its storage quota of 0.00 MiB" in refused["detail"]
        assert stored_events(api.container) == before
        assert api.get("/v1/storage", tenant=small).json()["quota_bytes"] == 104
        assert api.post("/v1/datasets", variant(1), tenant=other).status_code == 201
        assert api.get("/v1/storage", tenant=other).json()["quota_bytes"] == 2**20

        assert cartolog("tenant", "quota", small, "--mb", "0", database_url=url).returncode == 0
        assert api.get("/v1/storage", tenant=small).json()["quota_bytes"] is None
        assert api.post("/v1/datasets", variant(1), tenant=small).status_code == 201
        listed = cartolog("tenant", "list", "--json", database_url=url)
        row = next(r for r in json.loads(listed.stdout) if r["tenant"] == small)
        assert (row["storage_quota_mb"], row["storage_quota_own"]) == (None, True)

        back = cartolog("tenant", "quota", small, "--default", database_url=url)
        # the CLI's own server default (10 GiB); the API's is 1 MiB
        assert "quota 10,240 MiB (the server's default)" in back.stdout, back.stdout
        assert api.get("/v1/storage", tenant=small).json()["quota_bytes"] == 2**20


@pytest.mark.parametrize(("arguments", "error"), [
    (("--mb", "-1"), "a storage quota must be a finite, non-negative number"),
    (("--mb", "nan"), "a storage quota must be a finite, non-negative number"),
])
def test_a_bad_quota_or_tenant_is_a_one_line_error(settings: Settings, arguments: tuple[str, ...],
                                                   error: str) -> None:
    from tests.integration.test_cli import cartolog

    (tenant,) = tenants(1)
    url = settings.database_url
    assert cartolog("tenant", "create", tenant, database_url=url).returncode == 0
    done = cartolog("tenant", "quota", tenant, *arguments, database_url=url)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and error in done.stderr
    unknown = cartolog("tenant", "quota", f"{tenant}x", "--mb", "5", database_url=url)
    assert unknown.returncode == 1 and "is not registered" in unknown.stderr
