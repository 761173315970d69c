"""The read transaction of the API: tenant-bound, and without PostgreSQL's JIT (0503)."""

from __future__ import annotations

from api.reads import TenantReads
from infra.wiring import Container
from tests.integration.conftest import container  # noqa: F401


def test_reads_are_bound_to_the_tenant_and_run_without_jit(container: Container  # noqa: F811
                                                           ) -> None:
    reads = TenantReads(container.engine, "acme")
    row = reads.rows("SELECT current_setting('jit') AS jit, "
                     "current_setting('cartolog.tenant') AS tenant, current_user AS who")[0]
    assert dict(row) == {"jit": "off", "tenant": "acme", "who": "cartolog_reader"}
    with container.engine.connect() as connection:  # only the read's own transaction
        assert connection.exec_driver_sql("SHOW jit").scalar() == "on"
