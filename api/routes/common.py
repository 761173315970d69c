"""Shared route helpers: tenant reads, read-your-writes and pagination parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from api.reads import LastWrites, TenantReads, wait_until_visible
from api.security import Services, Viewer

Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")]
Limit = Annotated[int, Query(ge=1, le=10_000, description="Items per page")]
Wait = Annotated[float | None, Query(ge=0, le=30, description=(
    "Seconds to wait, at most, for the read model to hold your last write (default 5)"))]


def last_writes(request: Request) -> LastWrites:
    """This process's record of each tenant's latest write."""
    writes: LastWrites = request.app.state.last_writes
    return writes


Writes = Annotated[LastWrites, Depends(last_writes)]


def consistent_reads(caller: Viewer, services: Services, writes: Writes,
                     wait: Wait = None) -> TenantReads:
    """The tenant's read model, once it holds the caller's tenant's last write."""
    timeout = services.limits.read_wait_s if wait is None else wait
    wait_until_visible(services.engine, services.read_model_projection, writes, caller.tenant,
                       timeout)
    return TenantReads(services.engine, caller.tenant)


Reads = Annotated[TenantReads, Depends(consistent_reads)]


def next_offset(offset: int, limit: int, returned: int) -> int | None:
    """The offset of the next page, or None on the last one."""
    return offset + limit if returned == limit else None
