"""Mapbox vector tiles from PostGIS `ST_AsMVT`: zones, links and run results."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Response

from api.problems import ApiProblem
from api.reads import TenantReads
from api.routes.results import completed_run
from api.security import Services, Viewer
from api.tile_cache import TileCache, TileKey

router = APIRouter(prefix="/v1/tiles", tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"
Layer = Literal["zones", "links", "link_results", "zone_results"]

RESULT_LAYERS = ("link_results", "zone_results")
SCENARIO_VERSION = ("SELECT version FROM scenarios WHERE tenant_id = :tenant "
                    "AND scenario_id = :subject")
ENVELOPE = "ST_TileEnvelope(:z, :x, :y)"
LAYERS = {
    "links": f"""
        SELECT ST_AsMVTGeom(ST_Transform(l.geom, 3857), {ENVELOPE}, 4096, 64, true) AS geom,
               l.link_id, l.from_node, l.to_node, l.capacity, l.free_flow_time, l.lanes,
               l.closed, l.added
        FROM scenario_links l
        WHERE l.tenant_id = :tenant AND l.scenario_id = :subject
          AND l.geom && ST_Transform({ENVELOPE}, 4326)""",
    "zones": f"""
        SELECT ST_AsMVTGeom(ST_Transform(coalesce(z.geom, z.centroid), 3857), {ENVELOPE},
                            4096, 64, true) AS geom,
               z.zone_id, z.centroid_node, z.population, z.jobs
        FROM scenario_zones z
        WHERE z.tenant_id = :tenant AND z.scenario_id = :subject
          AND coalesce(z.geom, z.centroid) && ST_Transform({ENVELOPE}, 4326)""",
    "link_results": f"""
        SELECT ST_AsMVTGeom(ST_Transform(l.geom, 3857), {ENVELOPE}, 4096, 64, true) AS geom,
               r.link_id, r.flow, r.volume_capacity, r.congested_time, l.closed
        FROM link_results r
        JOIN simulation_runs s ON s.tenant_id = r.tenant_id AND s.run_id = r.run_id
        JOIN scenario_links l ON l.tenant_id = r.tenant_id AND l.scenario_id = s.scenario_id
             AND l.link_id = r.link_id
        WHERE r.tenant_id = :tenant AND r.run_id = :subject
          AND l.geom && ST_Transform({ENVELOPE}, 4326)""",
    "zone_results": f"""
        SELECT ST_AsMVTGeom(ST_Transform(coalesce(z.geom, z.centroid), 3857), {ENVELOPE},
                            4096, 64, true) AS geom,
               r.zone_id, r.trips, r.jobs_within_threshold, r.accessibility
        FROM zone_results r
        JOIN simulation_runs s ON s.tenant_id = r.tenant_id AND s.run_id = r.run_id
        JOIN scenario_zones z ON z.tenant_id = r.tenant_id AND z.scenario_id = s.scenario_id
             AND z.zone_id = r.zone_id
        WHERE r.tenant_id = :tenant AND r.run_id = :subject
          AND coalesce(z.geom, z.centroid) && ST_Transform({ENVELOPE}, 4326)""",
}


@router.get("/{layer}/{z}/{x}/{y}.mvt", response_class=Response,
            responses={200: {"content": {MVT: {}}}, 304: {"description": "Not modified"}})
def tile(layer: Layer, z: Annotated[int, Path(ge=0, le=22)], x: Annotated[int, Path(ge=0)],
         y: Annotated[int, Path(ge=0)], caller: Viewer, services: Services,
         scenario: Annotated[UUID | None, Query(description="For zones and links")] = None,
         run: Annotated[UUID | None, Query(description="For link_results, zone_results")] = None,
         if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """A vector tile of one layer (zones/links of a scenario, results of a run)."""
    if x >= 2**z or y >= 2**z:
        raise ApiProblem(404, "Not found", f"no tile {z}/{x}/{y}")
    subject, cache = _subject(layer, scenario, run, caller.tenant, services)
    reads = TenantReads(services.engine, caller.tenant)
    body = _body(reads, services.tiles, layer, subject, z, x, y)
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": cache, "ETag": tag, "Vary": "Authorization, Host"}
    if if_none_match == tag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MVT, headers=headers)


def _body(reads: TenantReads, kept: TileCache, layer: str, subject: UUID, z: int, x: int,
          y: int) -> bytes:
    """The tile from the process's cache, or built by PostGIS and kept (docs/decisions/0504).

    A run's results never change once completed: its tiles are kept under version 0. A
    scenario's tiles are kept under the read model's version of the scenario, read in the
    same statement as the tile, so a kept tile always matches its key."""
    mvt = f"SELECT ST_AsMVT(t.*, :layer, 4096, 'geom') FROM ({LAYERS[layer]}) AS t"
    params = {"layer": layer, "subject": subject, "z": z, "x": x, "y": y}
    if layer in RESULT_LAYERS:
        key = TileKey(reads.tenant, layer, subject, 0, z, x, y)
        body = kept.get(key)
        if body is None:
            body = bytes(reads.scalar(mvt, **params) or b"")
            kept.put(key, body)
        return body
    version = reads.scalar(SCENARIO_VERSION, subject=subject)
    if version is not None:
        body = kept.get(TileKey(reads.tenant, layer, subject, int(version), z, x, y))
        if body is not None:
            return body
    found = reads.rows(f"SELECT s.version, ({mvt}) AS tile FROM scenarios s "
                       "WHERE s.tenant_id = :tenant AND s.scenario_id = :subject", **params)
    if not found:  # not projected yet: an empty tile, kept nowhere
        return bytes(reads.scalar(mvt, **params) or b"")
    body = bytes(found[0]["tile"] or b"")
    kept.put(TileKey(reads.tenant, layer, subject, int(found[0]["version"]), z, x, y), body)
    return body


def _subject(layer: str, scenario: UUID | None, run: UUID | None, tenant: str,
             services: Services) -> tuple[UUID, str]:
    if layer in ("zones", "links"):
        if scenario is None:
            raise ApiProblem(422, "Invalid request", f"layer {layer} needs ?scenario=ID")
        services.app.get_scenario(tenant, scenario)
        return scenario, "private, max-age=30"
    if run is None:
        raise ApiProblem(422, "Invalid request", f"layer {layer} needs ?run=ID")
    completed_run(services, tenant, run)
    # A completed run's results never change.
    return run, "private, max-age=86400, immutable"
