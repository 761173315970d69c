"""Scenarios: create or fork, list, get (at a version), edit with If-Match, history."""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response
from fastapi.encoders import jsonable_encoder

from api.edits import to_domain
from api.json_body import StrictJsonRoute
from api.problems import ApiProblem
from api.routes.common import Limit, Offset, Reads, Writes, next_offset
from api.schemas import (
    EditsCreate,
    EditsPublic,
    HistoryEventPublic,
    HistoryPublic,
    ScenarioCreate,
    ScenarioList,
    ScenarioPublic,
    ScenarioSummary,
)
from api.security import Editor, Services, Viewer
from domain.scenario import Scenario

router = APIRouter(prefix="/v1/scenarios", tags=["scenarios"], route_class=StrictJsonRoute)
ENVELOPE_FIELDS = {"originator_id", "originator_version", "timestamp", "tenant_id", "actor",
                   "correlation_id"}
ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


@router.post("", status_code=201, response_model=ScenarioPublic)
def create_scenario(body: ScenarioCreate, caller: Editor, services: Services, writes: Writes,
                    response: Response) -> ScenarioPublic:
    """A new scenario on a dataset, or a fork of another scenario at a version."""
    app = services.app
    if body.fork_of is not None:
        scenario_id = app.fork_scenario(caller.tenant, body.fork_of, body.name, caller.actor,
                                        body.fork_version)
    else:
        assert body.dataset_id is not None
        scenario_id = app.create_scenario(caller.tenant, body.dataset_id, body.name,
                                          caller.actor)
    scenario = app.get_scenario(caller.tenant, scenario_id)
    writes.record(caller.tenant, scenario_id, scenario.version)
    response.headers["Location"] = f"/v1/scenarios/{scenario_id}"
    response.headers["ETag"] = etag(scenario.version)
    return public(scenario)


@router.get("", response_model=ScenarioList)
def list_scenarios(reads: Reads, offset: Offset = 0, limit: Limit = 100,
                   dataset_id: UUID | None = None,
                   include_archived: bool = False) -> ScenarioList:
    """The tenant's scenarios, most recently changed first."""
    rows = reads.rows(
        "SELECT scenario_id AS id, name, dataset_id, fork_of, fork_version, version, archived, "
        "updated_at FROM scenarios WHERE tenant_id = :tenant "
        "AND (CAST(:dataset AS uuid) IS NULL OR dataset_id = CAST(:dataset AS uuid)) "
        "AND (:archived OR NOT archived) "
        "ORDER BY updated_at DESC, scenario_id LIMIT :limit OFFSET :offset",
        dataset=str(dataset_id) if dataset_id else None, archived=include_archived,
        limit=limit, offset=offset)
    items = [ScenarioSummary.model_validate(dict(r)) for r in rows]
    return ScenarioList(items=items, next_offset=next_offset(offset, limit, len(items)))


@router.get("/{scenario_id}", response_model=ScenarioPublic)
def get_scenario(scenario_id: UUID, caller: Viewer, services: Services, response: Response,
                 version: Annotated[int | None, Query(ge=1, le=10**9)] = None
                 ) -> ScenarioPublic:
    """The scenario now, or as it was at `version`; `ETag` is its version."""
    scenario = services.app.get_scenario(caller.tenant, scenario_id, version)
    response.headers["ETag"] = etag(scenario.version)
    return public(scenario)


@router.post("/{scenario_id}/edits", response_model=EditsPublic)
def edit_scenario(scenario_id: UUID, body: EditsCreate, caller: Editor, services: Services,
                  writes: Writes, response: Response,
                  if_match: Annotated[str | None, Header(
                      description="The version the edits are based on (its ETag)")] = None,
                  ) -> EditsPublic:
    """Apply edits atomically; `If-Match` must name the current version."""
    expected = expected_version(if_match)
    version = services.app.edit_scenario(caller.tenant, scenario_id, expected,
                                         to_domain(body.edits), caller.actor)
    writes.record(caller.tenant, scenario_id, version)
    response.headers["ETag"] = etag(version)
    return EditsPublic(scenario_id=scenario_id, version=version)


@router.get("/{scenario_id}/history", response_model=HistoryPublic)
def scenario_history(scenario_id: UUID, caller: Viewer, services: Services) -> HistoryPublic:
    """The scenario's events, oldest first."""
    services.app.get_scenario(caller.tenant, scenario_id)
    events = services.app.repository.event_store.get(scenario_id)
    return HistoryPublic(id=scenario_id, events=[history_event(e) for e in events])


def history_event(event: Any) -> HistoryEventPublic:
    """One stored event as the API shows it."""
    payload = {k: v for k, v in vars(event).items() if k not in ENVELOPE_FIELDS}
    kind = type(event).__qualname__
    return HistoryEventPublic(
        version=event.originator_version, type=kind, occurred_at=event.timestamp,
        actor=event.actor, correlation_id=event.correlation_id,
        payload=jsonable_encoder(payload))


def public(scenario: Scenario) -> ScenarioPublic:
    """The response body of a scenario."""
    return ScenarioPublic(
        id=scenario.id, name=scenario.name, dataset_id=scenario.dataset_id,
        fork_of=scenario.fork_of, fork_version=scenario.fork_version, version=scenario.version,
        archived=scenario.archived, demand=scenario.demand,
        zone_attributes=scenario.zone_attributes, link_changes=scenario.link_changes,
        added_links=scenario.added_links, closed_links=scenario.closed_links,
        demand_matrix=scenario.demand_matrix, vehicle_classes=scenario.vehicle_classes)


def etag(version: int) -> str:
    """The ETag of an aggregate version."""
    return f'"{version}"'


def expected_version(if_match: str | None) -> int:
    """The version named by If-Match: 428 when missing, 412 when unusable."""
    if if_match is None or not if_match.strip():
        raise ApiProblem(428, "Precondition required",
                         "send If-Match with the scenario's ETag (its version)")
    found = ETAG.match(if_match)
    if found is None:
        raise ApiProblem(412, "Precondition failed", "If-Match must be one version ETag")
    return int(found.group(1))
