"""Run history (paged, filtered, from the read model), scenario diffs, archive and restore."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response

from api.json_body import StrictJsonRoute
from api.problems import ApiProblem
from api.reads import LastWrites, TenantReads
from api.review_schemas import ArchiveChange, EditRecordPublic, RunList, RunSummary, ScenarioDiff
from api.routes.common import Limit, Offset, Writes, consistent_reads, next_offset
from api.routes.scenarios import etag, expected_version, public
from api.schemas import ScenarioPublic
from api.security import Editor, Services, Viewer
from api.services import ApiServices

router = APIRouter(prefix="/v1", tags=["history"], route_class=StrictJsonRoute)
Status = Literal["queued", "running", "retrying", "completed", "dead_lettered", "cancelled"]
Version = Annotated[int, Query(ge=0, le=10**9)]
IfMatch = Annotated[str | None, Header(description="The scenario's current version (ETag)")]

RUNS_SQL = """
SELECT r.run_id AS id, r.scenario_id, r.scenario_version, r.model, r.parameters, r.status,
       r.attempt, r.max_attempts, r.attempts_allowed, r.worker, r.last_error, r.result_sha256,
       r.duration_s, r.requested_at, r.started_at, r.finished_at, r.version,
       coalesce((SELECT jsonb_object_agg(i.name, i.value) FROM indicators i
                 WHERE i.tenant_id = r.tenant_id AND i.run_id = r.run_id), '{}') AS indicators
FROM simulation_runs r
WHERE r.tenant_id = :tenant
  AND (CAST(:scenario AS uuid) IS NULL OR r.scenario_id = CAST(:scenario AS uuid))
  AND (CAST(:status AS text) IS NULL OR r.status = CAST(:status AS text))
  AND (CAST(:since AS timestamptz) IS NULL OR r.requested_at >= CAST(:since AS timestamptz))
ORDER BY r.requested_at DESC, r.run_id LIMIT :limit OFFSET :offset"""


@router.get("/simulations", response_model=RunList)
def list_runs(caller: Viewer, services: Services, writes: Writes,
              scenario: UUID | None = None, status: Status | None = None,
              since: Annotated[dt.datetime | None, Query(
                  description="Only runs requested at or after this time (ISO 8601)")] = None,
              offset: Offset = 0, limit: Limit = 100) -> RunList:
    """The tenant's runs, newest first; filter by scenario, status and request time."""
    if scenario is not None:
        services.app.get_scenario(caller.tenant, scenario)
    reads = consistent_reads(caller, services, writes)
    return runs_page(reads, scenario, status, since, offset, limit)


@router.get("/scenarios/{scenario_id}/simulations", response_model=RunList)
def scenario_runs(scenario_id: UUID, caller: Viewer, services: Services, writes: Writes,
                  status: Status | None = None, since: dt.datetime | None = None,
                  offset: Offset = 0, limit: Limit = 100) -> RunList:
    """The scenario's runs, newest first."""
    services.app.get_scenario(caller.tenant, scenario_id)
    reads = consistent_reads(caller, services, writes)
    return runs_page(reads, scenario_id, status, since, offset, limit)


def in_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A query's time in UTC (no zone: UTC). ISO 8601 allows offsets PostgreSQL refuses
    (beyond +-15:59), and a time near year 1 or 9999 may have no UTC equivalent: 422."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise ApiProblem(422, "Invalid request", f"{moment.isoformat()} is out of range",
                         problems=["since: not a representable time in UTC"]) from None


def runs_page(reads: TenantReads, scenario: UUID | None, status: str | None,
              since: dt.datetime | None, offset: int, limit: int) -> RunList:
    """One page of the run history."""
    rows = reads.rows(RUNS_SQL, scenario=str(scenario) if scenario else None, status=status,
                      since=in_utc(since), limit=limit, offset=offset)
    items = [RunSummary.model_validate(dict(row)) for row in rows]
    return RunList(items=items, next_offset=next_offset(offset, limit, len(items)))


@router.get("/scenarios/{scenario_id}/diff", response_model=ScenarioDiff)
def scenario_diff(scenario_id: UUID, caller: Viewer, services: Services,
                  from_version: Annotated[int, Query(alias="from", ge=1, le=10**9)],
                  to_version: Annotated[int | None, Query(alias="to", ge=1, le=10**9)] = None,
                  ) -> ScenarioDiff:
    """The edits from version `from` (excluded) to `to` (included; default: now)."""
    records = services.app.scenario_edits(caller.tenant, scenario_id, from_version, to_version)
    last = to_version or services.app.get_scenario(caller.tenant, scenario_id).version
    return ScenarioDiff(scenario_id=scenario_id, from_version=from_version, to_version=last,
                        edits=[EditRecordPublic.model_validate(r) for r in records],
                        subjects=sorted({str(r["subject"]) for r in records}))


@router.post("/scenarios/{scenario_id}/archive", response_model=ScenarioPublic)
def archive_scenario(scenario_id: UUID, body: ArchiveChange, caller: Editor,
                     services: Services, writes: Writes, response: Response,
                     if_match: IfMatch = None) -> ScenarioPublic:
    """Archive: no more edits or simulations until restored; `If-Match` required."""
    version = services.app.archive_scenario(caller.tenant, scenario_id,
                                            expected_version(if_match), body.reason,
                                            caller.actor)
    return _changed(scenario_id, version, caller.tenant, services, writes, response)


@router.post("/scenarios/{scenario_id}/restore", response_model=ScenarioPublic)
def restore_scenario(scenario_id: UUID, body: ArchiveChange, caller: Editor,
                     services: Services, writes: Writes, response: Response,
                     if_match: IfMatch = None) -> ScenarioPublic:
    """Bring an archived scenario back; `If-Match` required."""
    version = services.app.restore_scenario(caller.tenant, scenario_id,
                                            expected_version(if_match), body.reason,
                                            caller.actor)
    return _changed(scenario_id, version, caller.tenant, services, writes, response)


def _changed(scenario_id: UUID, version: int, tenant: str, services: ApiServices,
             writes: LastWrites, response: Response) -> ScenarioPublic:
    writes.record(tenant, scenario_id, version)
    response.headers["ETag"] = etag(version)
    return public(services.app.get_scenario(tenant, scenario_id))
