"""Read-model queries, scoped to one tenant twice: a WHERE clause and row-level security."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, RowMapping, text

from adapters.read_your_writes import wait_for_version
from api.problems import ApiProblem

READER_ROLE = "cartolog_reader"


class TenantReads:
    """Queries of one tenant's read model (as the RLS-bound reader role)."""

    def __init__(self, engine: Engine, tenant: str) -> None:
        self.engine = engine
        self.tenant = tenant

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read transaction that can only see this tenant's rows."""
        with self.engine.begin() as connection:
            connection.execute(text(f"SET LOCAL ROLE {READER_ROLE}"))
            # JIT off: PostGIS functions carry high cost estimates, so PostgreSQL compiled
            # every city-wide tile query, which cost 300-600 ms of a 100 ms query
            # (docs/decisions/0503).
            connection.execute(text("SELECT set_config('cartolog.tenant', :t, true), "
                                    "set_config('jit', 'off', true)"), {"t": self.tenant})
            yield connection

    def rows(self, sql: str, **params: Any) -> list[RowMapping]:
        """Every row of a query; `:tenant` is bound to this tenant."""
        with self.connect() as connection:
            return list(connection.execute(text(sql), {"tenant": self.tenant, **params})
                        .mappings())

    def scalar(self, sql: str, **params: Any) -> Any:
        """The single value of a query (None when no row)."""
        with self.connect() as connection:
            return connection.execute(text(sql), {"tenant": self.tenant, **params}).scalar()


class LastWrites:
    """Read-your-writes: each tenant's latest write (aggregate, version) in this process."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[UUID, int]] = {}
        self._lock = threading.Lock()

    def record(self, tenant: str, aggregate_id: UUID, version: int) -> None:
        """Remember a write that reads must not appear to predate."""
        with self._lock:
            self._latest[tenant] = (aggregate_id, version)

    def latest(self, tenant: str) -> tuple[UUID, int] | None:
        """The tenant's latest write here, if any."""
        with self._lock:
            return self._latest.get(tenant)


def wait_until_visible(engine: Engine, projection: str, writes: LastWrites, tenant: str,
                       timeout: float) -> None:
    """Block (bounded) until the read model holds the tenant's last write; 503 if it does not."""
    latest = writes.latest(tenant)
    if latest is None:
        return
    aggregate_id, version = latest
    if not wait_for_version(engine, projection, aggregate_id, version, timeout=timeout):
        raise ApiProblem(503, "Read model behind",
                         f"the read model has not caught up with your last write yet "
                         f"({aggregate_id} v{version}); retry shortly",
                         {"Retry-After": "1"})
