"""The `cartolog` command against the real database: exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from tests.conftest import REPO


def cartolog(*args: str, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "DATABASE_URL": database_url, **env}, timeout=120, check=False)


def test_migrate_is_idempotent_and_tenants_round_trip(fresh_database_url: str) -> None:
    for _ in range(2):
        done = cartolog("db", "migrate", database_url=fresh_database_url)
        assert done.returncode == 0, done.stderr
    name = f"city-{uuid.uuid4().hex[:6]}"
    assert cartolog("tenant", "create", name, "--display-name", "City",
                    database_url=fresh_database_url).returncode == 0
    again = cartolog("tenant", "create", name, database_url=fresh_database_url)
    assert again.returncode == 1
    assert again.stderr.strip() == f"cartolog: error: tenant {name!r} already exists"
    listed = cartolog("tenant", "list", "--json", database_url=fresh_database_url)
    assert [t["tenant"] for t in json.loads(listed.stdout)] == [name]


def test_migrate_creates_a_missing_database(fresh_database_url: str) -> None:
    url = fresh_database_url.rsplit("/", 1)[0] + f"/cartolog_test_new_{uuid.uuid4().hex[:6]}"
    done = cartolog("db", "migrate", database_url=url)
    assert done.returncode == 0 and "database created" in done.stdout
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c",
                    f"DROP DATABASE {url.rsplit('/', 1)[1]}"], check=True, capture_output=True)


def test_failures_are_one_line_and_non_zero(fresh_database_url: str) -> None:
    bad_name = cartolog("tenant", "create", "Not A Label", database_url=fresh_database_url)
    unmigrated = cartolog("tenant", "list", database_url=fresh_database_url.rsplit("/", 1)[0]
                          + "/postgres")
    no_server = cartolog("tenant", "list",
                         database_url="postgresql+psycopg2://postgres@127.0.0.1:1/x")
    no_broker = cartolog("log", "republish", database_url=fresh_database_url,
                         KAFKA_BOOTSTRAP_SERVERS="")
    for done in (bad_name, unmigrated, no_server, no_broker):
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cartolog: error: "), done.stderr
    assert "run `cartolog db migrate`" in unmigrated.stderr
    assert "KAFKA_BOOTSTRAP_SERVERS is not set" in no_broker.stderr


def test_every_command_answers_help() -> None:
    for path in (["--help"], ["up", "--help"], ["relay", "--help"], ["db", "migrate", "--help"],
                 ["tenant", "create", "--help"], ["log", "republish", "--help"],
                 ["model", "run", "--help"]):
        done = subprocess.run([sys.executable, "-m", "infra.cli", *path], cwd=REPO,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and "usage: cartolog" in done.stdout, path
