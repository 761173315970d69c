"""Fixtures over the real PostGIS and the real broker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from domain.errors import AlreadyExists
from domain.values import Actor
from infra.settings import Settings
from infra.wiring import Container, build

OPERATOR = Actor("tests")


@pytest.fixture()
def container(settings: Settings) -> Iterator[Container]:
    built = build(settings)
    for tenant in ("acme", "rival"):
        with contextlib.suppress(AlreadyExists):
            built.app.register_tenant(tenant, OPERATOR)
    yield built
    built.close()


@pytest.fixture()
def own_container(settings: Settings, fresh_database_url: str) -> Iterator[Container]:
    """A container on a database of its own: rebuilds replace whole tables."""
    built = build(settings.model_copy(update={"database_url": fresh_database_url}))
    for tenant in ("acme", "rival"):
        built.app.register_tenant(tenant, OPERATOR)
    yield built
    built.close()


def stored_events(container: Container) -> int:
    with container.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM cartolog_events")).scalar_one())
