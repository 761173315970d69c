"""Test session: databases and topic names of its own, and a real broker (started here
unless KAFKA_BOOTSTRAP_SERVERS is set). Each test that asks for `settings` gets a fresh
database cloned from a migrated template. Unit tests request none of these fixtures."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from infra.broker import LocalBroker
from infra.settings import DEFAULT_DATABASE_URL, Settings

REPO = Path(__file__).resolve().parents[1]
SESSION = uuid.uuid4().hex[:8]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if "/integration/" in path:
            item.add_marker(pytest.mark.integration)
        if "/e2e/" in path:
            item.add_marker(pytest.mark.e2e)


class BrokerHandle:
    """The session's broker; `restart_empty` loses every topic, like a broker crash."""

    def __init__(self, local: LocalBroker | None, external: str | None) -> None:
        self.local = local
        self.bootstrap_servers = local.bootstrap_servers if local else str(external)

    def restart_empty(self, topics: list[str]) -> None:
        if self.local is not None:
            self.local.restart_empty()
        else:  # a shared external cluster cannot be restarted: empty our topics instead
            from adapters.kafka import delete_topics

            delete_topics(self.bootstrap_servers, topics)


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerHandle]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield BrokerHandle(None, external)
        return
    log_dir = REPO / ".cartolog"
    log_dir.mkdir(exist_ok=True)
    with LocalBroker(log_file=log_dir / f"test-broker-{SESSION}.log") as local:
        yield BrokerHandle(local, None)


def _database_url(name: str) -> str:
    base = make_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template_database_url() -> Iterator[str]:
    """A migrated database that every test's database is cloned from, dropped at the end."""
    from adapters.schema import ensure_database, migrate

    url = _database_url(f"cartolog_test_{SESSION}_template")
    ensure_database(url)
    engine = create_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    _drop_database(url)


def _clone(template_url: str) -> str:
    """A new database copied from the migrated template (much faster than migrating)."""
    url = _database_url(f"cartolog_test_{SESSION}_{uuid.uuid4().hex[:8]}")
    template = make_url(template_url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(40):
            with admin.connect() as connection:
                # Nobody should use the template, but a just-closed migration connection can
                # linger for a moment, and CREATE DATABASE refuses while it does.
                connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :t AND pid <> pg_backend_pid()"), {"t": template})
                try:
                    connection.execute(text(
                        f'CREATE DATABASE "{make_url(url).database}" TEMPLATE "{template}"'))
                    return url
                except OperationalError:
                    if attempt == 39:
                        raise
            time.sleep(0.25)
    finally:
        admin.dispose()
    raise AssertionError("unreachable")


@pytest.fixture()
def database_url(template_database_url: str) -> Iterator[str]:
    """A database of this test's own, migrated, dropped afterwards: tests never see each
    other's events, and a pipeline started by a test relays only that test's log."""
    url = _clone(template_database_url)
    yield url
    _drop_database(url)


def _drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": parsed.database})
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}"'))
    admin.dispose()


@pytest.fixture()
def settings(database_url: str, broker: BrokerHandle) -> Settings:
    """Settings with this test's own topic names (uuid prefix) and its own database."""
    return Settings(
        database_url=database_url, kafka_bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.cartolog", events_partitions=4,
        jobs_partitions=4,
    )


@pytest.fixture()
def fresh_database_url(template_database_url: str) -> Iterator[str]:
    """A second empty, migrated database (e.g. to restore a backup into)."""
    url = _clone(template_database_url)
    yield url
    _drop_database(url)
