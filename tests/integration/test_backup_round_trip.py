"""Disaster recovery end to end: export, wipe the database, empty broker, import,
republish, rebuild — the read model comes back byte for byte."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from adapters.schema import ensure_database, migrate
from infra.wiring import Container, build
from tests.conftest import REPO, BrokerHandle
from tests.integration.projections.conftest import (
    Workload,
    checksums,
    projector_env,
    relay_and_projector,
    wait_caught_up,
)


def cartolog(container: Container, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=REPO,
                          env=projector_env(container),
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
    own_container: Container, broker: BrokerHandle, tmp_path: Path,
) -> None:
    rng = random.Random(7)
    workload = Workload(own_container, ("acme", "rival"))
    for _ in range(40):
        workload.do(rng.randrange(6), rng.randrange(2), rng.randrange(100), rng.uniform(1, 500))
    with relay_and_projector(own_container):
        wait_caught_up(own_container)
    before = checksums(own_container)
    backup = tmp_path / "log.jsonl.gz"
    assert "exported" in cartolog(own_container, "log", "export", str(backup))
    url, settings = own_container.settings.database_url, own_container.settings
    own_container.close()

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
