"""Server-Sent Events per tenant: simulation finished/failed, BI rebuild finished."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.reads import TenantReads
from api.security import Services, Viewer

router = APIRouter(prefix="/v1", tags=["notifications"])
HEARTBEAT_S = 15.0

AFTER_SQL = """
SELECT position, event_id, kind, subject_id, subject_version, title, details, occurred_at
FROM notifications WHERE tenant_id = :tenant AND position > :after
ORDER BY position LIMIT 500"""


@router.get("/notifications", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def notifications(
    caller: Viewer, services: Services,
    last_event_id: Annotated[str | None, Header(
        description="Resume after this event id (its log position)")] = None,
    duration: Annotated[float | None, Query(
        gt=0, le=3600, description="Seconds before the stream ends (clients reconnect)")] = None,
) -> StreamingResponse:
    """A stream of the tenant's notifications; resume with `Last-Event-ID`."""
    reads = TenantReads(services.engine, caller.tenant)
    after = _position(last_event_id)
    if after is None:
        after = int(await run_in_threadpool(
            reads.scalar, "SELECT coalesce(max(position), 0) FROM notifications "
            "WHERE tenant_id = :tenant") or 0)
    limits = services.limits
    stream = _events(reads, after, duration or limits.sse_duration_s, limits.sse_poll_s)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(reads: TenantReads, after: int, duration: float,
                  poll: float) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    deadline = time.monotonic() + duration
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        rows = await run_in_threadpool(reads.rows, AFTER_SQL, after=after)
        for row in rows:
            after = int(row["position"])
            yield _frame(dict(row))
        if rows:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > HEARTBEAT_S:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(poll)


def _frame(row: dict[str, Any]) -> str:
    data = {"id": str(row["event_id"]), "kind": row["kind"], "title": row["title"],
            "subject_id": str(row["subject_id"]), "subject_version": row["subject_version"],
            "details": row["details"], "occurred_at": row["occurred_at"].isoformat(),
            "position": row["position"]}
    return (f"id: {row['position']}\nevent: {row['kind']}\n"
            f"data: {json.dumps(data, sort_keys=True, default=str)}\n\n")


def _position(last_event_id: str | None) -> int | None:
    if last_event_id is None or not last_event_id.strip().isdigit():
        return None
    return int(last_event_id.strip())
