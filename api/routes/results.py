"""Results of a run from the read model: links and zones GeoJSON, indicators, comparison."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from adapters.read_your_writes import wait_for_version
from api.problems import ApiProblem
from api.reads import TenantReads
from api.routes.common import Limit, Offset
from api.schemas import (
    ComparisonPublic,
    FeatureCollectionPublic,
    IndicatorDelta,
    IndicatorList,
    IndicatorPublic,
    LinkFlowDelta,
)
from api.security import Services, Viewer
from api.services import ApiServices
from domain.simulation import COMPLETED

router = APIRouter(prefix="/v1", tags=["results"])
GEOJSON = "application/geo+json"
Bbox = Annotated[str | None, Query(
    description="minLon,minLat,maxLon,maxLat (WGS84)", pattern=r"^[-0-9.,eE+ ]{7,120}$")]

LINKS_SQL = """
SELECT r.link_id, r.flow, r.volume_capacity, r.congested_time, l.from_node, l.to_node,
       l.capacity, l.closed, ST_AsGeoJSON(l.geom, 7)::json AS geometry
FROM link_results r
JOIN simulation_runs s ON s.tenant_id = r.tenant_id AND s.run_id = r.run_id
LEFT JOIN scenario_links l ON l.tenant_id = r.tenant_id AND l.scenario_id = s.scenario_id
     AND l.link_id = r.link_id
WHERE r.tenant_id = :tenant AND r.run_id = :run AND (NOT :filter
      OR l.geom && ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326))
ORDER BY r.link_id LIMIT :limit OFFSET :offset"""

ZONES_SQL = """
SELECT r.zone_id, r.trips, r.jobs_within_threshold, r.accessibility, z.population, z.jobs,
       ST_AsGeoJSON(coalesce(z.geom, z.centroid), 7)::json AS geometry
FROM zone_results r
JOIN simulation_runs s ON s.tenant_id = r.tenant_id AND s.run_id = r.run_id
LEFT JOIN scenario_zones z ON z.tenant_id = r.tenant_id AND z.scenario_id = s.scenario_id
     AND z.zone_id = r.zone_id
WHERE r.tenant_id = :tenant AND r.run_id = :run AND (NOT :filter
      OR coalesce(z.geom, z.centroid) && ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326))
ORDER BY r.zone_id LIMIT :limit OFFSET :offset"""


@router.get("/simulations/{run_id}/links", response_model=FeatureCollectionPublic,
            responses={200: {"content": {GEOJSON: {}}}})
def link_results(run_id: UUID, caller: Viewer, services: Services, request: Request,
                 bbox: Bbox = None, offset: Offset = 0, limit: Limit = 1000) -> JSONResponse:
    """GeoJSON of link results: flow, volume/capacity, congested time (bbox, pages)."""
    reads = completed_run(services, caller.tenant, run_id)
    rows = reads.rows(LINKS_SQL, run=run_id, limit=limit, offset=offset, **box(bbox))
    return collection(rows, "link_id", request, offset, limit)


@router.get("/simulations/{run_id}/zones", response_model=FeatureCollectionPublic,
            responses={200: {"content": {GEOJSON: {}}}})
def zone_results(run_id: UUID, caller: Viewer, services: Services, request: Request,
                 bbox: Bbox = None, offset: Offset = 0, limit: Limit = 1000) -> JSONResponse:
    """GeoJSON of zone results: trips and accessibility (bbox, pages)."""
    reads = completed_run(services, caller.tenant, run_id)
    rows = reads.rows(ZONES_SQL, run=run_id, limit=limit, offset=offset, **box(bbox))
    return collection(rows, "zone_id", request, offset, limit)


@router.get("/simulations/{run_id}/indicators", response_model=IndicatorList)
def run_indicators(run_id: UUID, caller: Viewer, services: Services) -> IndicatorList:
    """The run's network-wide indicators."""
    reads = completed_run(services, caller.tenant, run_id)
    rows = reads.rows("SELECT name, value, unit FROM indicators WHERE tenant_id = :tenant "
                      "AND run_id = :run ORDER BY name", run=run_id)
    return IndicatorList(run_id=run_id,
                         indicators=[IndicatorPublic.model_validate(dict(r)) for r in rows])


@router.get("/compare", response_model=ComparisonPublic)
def compare_runs(caller: Viewer, services: Services,
                 a: Annotated[UUID, Query(description="The reference run")],
                 b: Annotated[UUID, Query(description="The run compared with it")],
                 limit: Limit = 10_000) -> ComparisonPublic:
    """Indicator deltas and link-flow differences of two runs (b minus a)."""
    completed_run(services, caller.tenant, a)
    reads = completed_run(services, caller.tenant, b)
    indicators = reads.rows(
        "SELECT coalesce(x.name, y.name) AS name, coalesce(x.unit, y.unit) AS unit, "
        "x.value AS value_a, y.value AS value_b, y.value - x.value AS difference "
        "FROM (SELECT * FROM indicators WHERE tenant_id = :tenant AND run_id = :a) x "
        "FULL JOIN (SELECT * FROM indicators WHERE tenant_id = :tenant AND run_id = :b) y "
        "ON x.name = y.name ORDER BY 1", a=a, b=b)
    links = reads.rows(
        "SELECT coalesce(x.link_id, y.link_id) AS link_id, x.flow AS flow_a, y.flow AS flow_b, "
        "y.flow - x.flow AS difference "
        "FROM (SELECT * FROM link_results WHERE tenant_id = :tenant AND run_id = :a) x "
        "FULL JOIN (SELECT * FROM link_results WHERE tenant_id = :tenant AND run_id = :b) y "
        "ON x.link_id = y.link_id ORDER BY abs(coalesce(y.flow, 0) - coalesce(x.flow, 0)) "
        "DESC, 1 LIMIT :limit", a=a, b=b, limit=limit)
    return ComparisonPublic(
        a=a, b=b, indicators=[IndicatorDelta.model_validate(dict(r)) for r in indicators],
        links=[LinkFlowDelta.model_validate(dict(r)) for r in links])


def completed_run(services: ApiServices, tenant: str, run_id: UUID) -> TenantReads:
    """The tenant's reads once the read model holds this completed run (409 if not done)."""
    run = services.app.get_run(tenant, run_id)
    if run.status != COMPLETED:
        raise ApiProblem(409, "Run not completed",
                         f"run {run_id} is {run.status}; results exist once it completed")
    wait = services.limits.read_wait_s
    if not wait_for_version(services.engine, services.read_model_projection, run_id,
                            run.version, timeout=wait):
        raise ApiProblem(503, "Read model behind", f"results of run {run_id} are not "
                         "projected yet; retry shortly", {"Retry-After": "1"})
    return TenantReads(services.engine, tenant)


def box(bbox: str | None) -> dict[str, Any]:
    """SQL parameters of a bbox filter (422 when malformed)."""
    if bbox is None:
        return {"filter": False, "x1": 0.0, "y1": 0.0, "x2": 0.0, "y2": 0.0}
    try:
        x1, y1, x2, y2 = (float(v) for v in bbox.split(","))
    except ValueError:
        raise ApiProblem(422, "Invalid bbox", "bbox is minLon,minLat,maxLon,maxLat") from None
    if not (-180 <= x1 <= x2 <= 180 and -90 <= y1 <= y2 <= 90):
        raise ApiProblem(422, "Invalid bbox", "bbox must be min <= max within -180..180, "
                         "-90..90")
    return {"filter": True, "x1": x1, "y1": y1, "x2": x2, "y2": y2}


def collection(rows: list[Any], key: str, request: Request, offset: int,
               limit: int) -> JSONResponse:
    """A FeatureCollection page with a `next` link when more may follow."""
    features = [{"type": "Feature", "id": row[key], "geometry": row["geometry"],
                 "properties": {k: v for k, v in row.items() if k != "geometry"}}
                for row in rows]
    following = None
    if len(rows) == limit:
        following = str(request.url.include_query_params(offset=offset + limit))
    body = FeatureCollectionPublic(features=features, next=following)
    return JSONResponse(body.model_dump(mode="json"), media_type=GEOJSON)
