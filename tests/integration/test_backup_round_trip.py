"""Disaster recovery end to end: export, wipe the database, empty broker, import,
republish, rebuild — the read model comes back byte for byte."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from adapters.schema import ensure_database, migrate
from infra.settings import Settings
from infra.wiring import Container, build
from tests.conftest import REPO, BrokerHandle
from tests.integration.conftest import OPERATOR
from tests.integration.projections.conftest import (
    Workload,
    checksums,
    relay_and_projector,
    wait_caught_up,
)


@pytest.fixture()
def system(settings: Settings, fresh_database_url: str) -> Iterator[Container]:
    built = build(settings.model_copy(update={"database_url": fresh_database_url}))
    for tenant in ("acme", "rival"):
        built.app.register_tenant(tenant, OPERATOR)
    yield built
    built.close()


def cartolog(container: Container, *args: str) -> str:
    settings = container.settings
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": container.bootstrap_servers,
           "CARTOLOG_TOPIC_PREFIX": settings.topic_prefix}
    done = subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wipe(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name})
        connection.execute(text(f'DROP DATABASE "{name}"'))
    admin.dispose()
    ensure_database(url)
    engine = create_engine(url)
    migrate(engine)
    engine.dispose()


def test_export_wipe_import_republish_rebuild_gives_the_same_read_model(
    system: Container, broker: BrokerHandle, tmp_path: Path,
) -> None:
    rng = random.Random(7)
    workload = Workload(system, ("acme", "rival"))
    for _ in range(40):
        workload.do(rng.randrange(6), rng.randrange(2), rng.randrange(100), rng.uniform(1, 500))
    with relay_and_projector(system):
        wait_caught_up(system)
    before = checksums(system)
    backup = tmp_path / "log.jsonl.gz"
    assert "exported" in cartolog(system, "log", "export", str(backup))
    url, settings = system.settings.database_url, system.settings
    system.close()

    wipe(url)
    broker.restart_empty([settings.events_topic])
    restored = build(settings)
    try:
        assert "imported" in cartolog(restored, "log", "import", str(backup))
        assert "republished" in cartolog(restored, "log", "republish")
        cartolog(restored, "projections", "rebuild", "--all")
        assert checksums(restored) == before
        assert cartolog(restored, "log", "verify").strip().endswith("consistent")
    finally:
        restored.close()
