"""Merge requests: propose a fork's edits for its parent, review, resolve conflicts, merge."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder

from api.comparison import link_changes
from api.json_body import StrictJsonRoute
from api.reads import TenantReads, wait_until_visible
from api.review_schemas import (
    CloseCreate,
    ConflictPublic,
    EditRecordPublic,
    LinkFlowChange,
    MergeRequestCreate,
    MergeRequestList,
    MergeRequestPublic,
    MergeRequestSummary,
    ResolutionCreate,
    ReviewCreate,
    ReviewPublic,
    RunComparison,
    TrailEntry,
)
from api.routes.common import Limit, Offset, Writes, next_offset
from api.schemas import IndicatorDelta
from api.security import Editor, Reviewer, Services, Viewer
from api.services import ApiServices
from domain.merge_request import ENVELOPE, MergeRequest

router = APIRouter(prefix="/v1", tags=["merge requests"], route_class=StrictJsonRoute)
PROJECTION = "merge_requests"

LATEST_COMPLETED = """
SELECT run_id FROM simulation_runs WHERE tenant_id = :tenant AND scenario_id = :scenario
AND status = 'completed' ORDER BY finished_at DESC NULLS LAST, run_id LIMIT 1"""

INDICATOR_DELTAS = """
SELECT coalesce(x.name, y.name) AS name, coalesce(x.unit, y.unit) AS unit,
       x.value AS value_a, y.value AS value_b, y.value - x.value AS difference
FROM (SELECT * FROM indicators WHERE tenant_id = :tenant AND run_id = :a) x
FULL JOIN (SELECT * FROM indicators WHERE tenant_id = :tenant AND run_id = :b) y
ON x.name = y.name ORDER BY 1"""

LIST_SQL = """
SELECT request_id AS id, title, status, author, fork_id, parent_id, verdict, edit_count,
       conflict_count, merged_version, opened_at, updated_at, version
FROM merge_requests WHERE tenant_id = :tenant
  AND (CAST(:status AS text) IS NULL OR status = CAST(:status AS text))
  AND (CAST(:scenario AS uuid) IS NULL OR fork_id = CAST(:scenario AS uuid)
       OR parent_id = CAST(:scenario AS uuid))
ORDER BY updated_at DESC, request_id LIMIT :limit OFFSET :offset"""


@router.post("/scenarios/{fork_id}/merge-requests", status_code=201,
             response_model=MergeRequestPublic)
def open_merge_request(fork_id: UUID, body: MergeRequestCreate, caller: Editor,
                       services: Services, writes: Writes,
                       response: Response) -> MergeRequestPublic:
    """Propose the fork's edits since its fork point for its parent."""
    request_id = services.app.open_merge_request(caller.tenant, fork_id, body.title,
                                                 caller.actor)
    writes.record(caller.tenant, request_id, 1)
    response.headers["Location"] = f"/v1/merge-requests/{request_id}"
    return shown(services, caller.tenant, request_id)


@router.get("/merge-requests", response_model=MergeRequestList)
def list_merge_requests(caller: Viewer, services: Services, writes: Writes,
                        status: Literal["open", "merged", "closed"] | None = None,
                        scenario: Annotated[UUID | None, Query(
                            description="Requests from or into this scenario")] = None,
                        offset: Offset = 0, limit: Limit = 100) -> MergeRequestList:
    """The tenant's merge requests, most recently changed first."""
    if scenario is not None:
        services.app.get_scenario(caller.tenant, scenario)
    wait_until_visible(services.engine, PROJECTION, writes, caller.tenant,
                       services.limits.read_wait_s)
    rows = TenantReads(services.engine, caller.tenant).rows(
        LIST_SQL, status=status, scenario=str(scenario) if scenario else None, limit=limit,
        offset=offset)
    items = [MergeRequestSummary.model_validate(dict(r)) for r in rows]
    return MergeRequestList(items=items, next_offset=next_offset(offset, limit, len(items)))


@router.get("/merge-requests/{request_id}", response_model=MergeRequestPublic)
def get_merge_request(request_id: UUID, caller: Viewer,
                      services: Services) -> MergeRequestPublic:
    """Edits, conflicts with the parent as it is now, reviews, run comparison and trail."""
    return shown(services, caller.tenant, request_id)


@router.post("/merge-requests/{request_id}/reviews", response_model=MergeRequestPublic)
def review(request_id: UUID, body: ReviewCreate, caller: Reviewer, services: Services,
           writes: Writes) -> MergeRequestPublic:
    """Approve or request changes (role reviewer or admin; never your own request)."""
    version = services.app.review_merge_request(caller.tenant, request_id, body.verdict,
                                                body.comment, caller.actor)
    writes.record(caller.tenant, request_id, version)
    return shown(services, caller.tenant, request_id)


@router.post("/merge-requests/{request_id}/resolutions", response_model=MergeRequestPublic)
def resolve(request_id: UUID, body: ResolutionCreate, caller: Editor, services: Services,
            writes: Writes) -> MergeRequestPublic:
    """Settle a conflict by taking the fork's or the parent's edits on its subject."""
    version = services.app.resolve_merge_conflict(caller.tenant, request_id, body.subject,
                                                  body.take, caller.actor)
    writes.record(caller.tenant, request_id, version)
    return shown(services, caller.tenant, request_id)


@router.post("/merge-requests/{request_id}/merge", response_model=MergeRequestPublic)
def merge(request_id: UUID, caller: Editor, services: Services,
          writes: Writes) -> MergeRequestPublic:
    """Apply the approved request's edits to the parent (409 while a conflict is open)."""
    services.app.merge(caller.tenant, request_id, caller.actor)
    request = services.app.get_merge_request(caller.tenant, request_id)
    writes.record(caller.tenant, request_id, request.version)
    return shown(services, caller.tenant, request_id)


@router.post("/merge-requests/{request_id}/close", response_model=MergeRequestPublic)
def close(request_id: UUID, body: CloseCreate, caller: Editor, services: Services,
          writes: Writes) -> MergeRequestPublic:
    """Withdraw the request."""
    version = services.app.close_merge_request(caller.tenant, request_id, body.reason,
                                               caller.actor)
    writes.record(caller.tenant, request_id, version)
    return shown(services, caller.tenant, request_id)


def shown(services: ApiServices, tenant: str, request_id: UUID) -> MergeRequestPublic:
    """The response body of a merge request."""
    app = services.app
    request = app.get_merge_request(tenant, request_id)
    current = app.merge_conflicts(tenant, request) if request.status == "open" else (
        request.conflicts)
    return MergeRequestPublic(
        id=request.id, title=request.title, status=request.status, author=request.author,
        fork_id=request.fork_id, parent_id=request.parent_id, fork_point=request.fork_point,
        fork_version=request.fork_version, parent_version=request.parent_version,
        verdict=request.verdict, merged_version=request.merged_version,
        version=request.version,
        edits=[EditRecordPublic.model_validate(e) for e in request.edits],
        conflicts=[ConflictPublic.model_validate(
            {**c, "resolution": request.resolutions.get(c["subject"])}) for c in current],
        reviews=[ReviewPublic.model_validate(r) for r in request.reviews],
        comparison=comparison(TenantReads(services.engine, tenant), request),
        trail=[trail_entry(e) for e in app.repository.event_store.get(request_id)])


def comparison(reads: TenantReads, request: MergeRequest) -> RunComparison | None:
    """Indicator deltas between the parent's and the fork's latest completed runs."""
    a = reads.scalar(LATEST_COMPLETED, scenario=request.parent_id)
    b = reads.scalar(LATEST_COMPLETED, scenario=request.fork_id)
    if a is None or b is None:
        return None
    rows = reads.rows(INDICATOR_DELTAS, a=a, b=b)
    changed = [c for c in link_changes(reads, a, b) if c["significant"]]
    return RunComparison(a=a, b=b,
                         indicators=[IndicatorDelta.model_validate(dict(r)) for r in rows],
                         significant_links=len(changed),
                         links=[LinkFlowChange.model_validate(c) for c in changed[:20]])


def trail_entry(event: Any) -> TrailEntry:
    """One stored event of the request."""
    payload = {k: v for k, v in vars(event).items() if k not in ENVELOPE}
    return TrailEntry(version=event.originator_version, type=type(event).__name__,
                      actor=event.actor, occurred_at=event.timestamp,
                      payload=jsonable_encoder(payload))
