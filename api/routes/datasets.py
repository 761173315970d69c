"""Datasets: import GeoJSON or TNTP, list, get."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Response
from starlette.concurrency import run_in_threadpool

from adapters.isolated import Bounds, IsolatedFailure, run_isolated
from api.geojson_import import parse_network
from api.json_body import StrictJsonRoute
from api.matrix_gate import TenantTurns
from api.problems import ApiProblem
from api.routes.common import Limit, Offset, Reads, Writes, next_offset
from api.schemas import (
    DatasetCreate,
    DatasetList,
    DatasetPublic,
    GeoJsonDatasetCreate,
    TntpDatasetCreate,
)
from api.security import Caller, Editor, Services, Viewer
from api.services import ApiServices
from api.tntp_import import parse_tntp
from domain.dataset import Dataset
from domain.values import Network

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], route_class=StrictJsonRoute)


# Dataset imports read and check a file of up to CARTOLOG_API_MAX_BODY_BYTES: two at a time in
# this process and one per tenant; the others wait up to 30 s, then 503 (decision 0710).
IMPORTS = TenantTurns("other datasets are being imported", slots=2, wait_s=30.0,
                      retry_after_s=10)


@router.post("", status_code=201, response_model=DatasetPublic)
async def import_dataset(body: Annotated[DatasetCreate, Body()], caller: Editor,
                         services: Services, writes: Writes, response: Response
                         ) -> DatasetPublic:
    """Import a base network and zones (GeoJSON FeatureCollections or a TNTP upload)."""
    limits = services.limits
    async with IMPORTS.turn(caller.tenant):
        if isinstance(body, GeoJsonDatasetCreate):
            network = await run_in_threadpool(_from_geojson, body, limits.max_features)
        else:
            network = await run_in_threadpool(_from_tntp, body, limits.max_features,
                                              limits.upload_bounds)
        return await run_in_threadpool(stored, services, caller, writes, response, body.name,
                                       network, body.format)


def stored(services: ApiServices, caller: Caller, writes: Writes, response: Response,
           name: str, network: Network, source_format: str) -> DatasetPublic:
    """Record an imported network as the tenant's new dataset; its response body."""
    dataset_id = services.app.import_dataset(caller.tenant, name, network, caller.actor,
                                             source_format=source_format)
    dataset = services.app.get_dataset(caller.tenant, dataset_id)
    writes.record(caller.tenant, dataset_id, dataset.version)
    response.headers["Location"] = f"/v1/datasets/{dataset_id}"
    return public(dataset)


@router.get("", response_model=DatasetList)
def list_datasets(reads: Reads, offset: Offset = 0, limit: Limit = 100) -> DatasetList:
    """The tenant's datasets, newest first."""
    rows = reads.rows(
        "SELECT dataset_id AS id, name, network_sha256, node_count, link_count, zone_count, "
        "source_format, 1 AS version FROM datasets WHERE tenant_id = :tenant "
        "ORDER BY imported_at DESC, dataset_id LIMIT :limit OFFSET :offset",
        limit=limit, offset=offset)
    items = [DatasetPublic.model_validate(dict(r)) for r in rows]
    return DatasetList(items=items, next_offset=next_offset(offset, limit, len(items)))


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: UUID, caller: Viewer, services: Services) -> DatasetPublic:
    """One dataset."""
    return public(services.app.get_dataset(caller.tenant, dataset_id))


def public(dataset: Dataset) -> DatasetPublic:
    """The response body of a dataset."""
    return DatasetPublic(
        id=dataset.id, name=dataset.name, network_sha256=dataset.network_sha256,
        node_count=dataset.node_count, link_count=dataset.link_count,
        zone_count=dataset.zone_count, source_format=dataset.source_format,
        version=dataset.version)


def _from_geojson(body: GeoJsonDatasetCreate, max_features: int) -> Network:
    network, problems = parse_network(body.links, body.zones, body.first_thru_node,
                                      max_features, body.demand)
    if network is None:
        raise ApiProblem(
            422, "Invalid dataset", f"{len(problems)} feature(s) rejected; nothing was stored",
            problems=[str(p) for p in problems],
            features=[{"collection": p.collection, "index": p.index, "reason": p.reason}
                      for p in problems])
    return network


def _from_tntp(body: TntpDatasetCreate, max_features: int, bounds: Bounds) -> Network:
    """The TNTP files read in a process of their own (decision 0710): a big trips file keeps
    its reader busy for seconds, which must not hold the API's interpreter."""
    try:
        network, problems = run_isolated(parse_tntp, (body.net, body.trips, body.node,
                                                      max_features, body.crs), bounds,
                                         what="the TNTP upload")
    except IsolatedFailure as failure:
        network, problems = None, [str(failure)]
    if network is None:
        raise ApiProblem(422, "Invalid dataset",
                         f"{len(problems)} TNTP line(s) rejected; nothing was stored",
                         problems=problems)
    return network
