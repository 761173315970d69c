"""Datasets: import GeoJSON or TNTP, list, get."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Response

from api.geojson_import import parse_network
from api.json_body import StrictJsonRoute
from api.problems import ApiProblem
from api.routes.common import Limit, Offset, Reads, Writes, next_offset
from api.schemas import (
    DatasetCreate,
    DatasetList,
    DatasetPublic,
    GeoJsonDatasetCreate,
    TntpDatasetCreate,
)
from api.security import Editor, Services, Viewer
from api.tntp_import import parse_tntp
from domain.dataset import Dataset
from domain.values import Network

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], route_class=StrictJsonRoute)


@router.post("", status_code=201, response_model=DatasetPublic)
def import_dataset(body: Annotated[DatasetCreate, Body()], caller: Editor, services: Services,
                   writes: Writes, response: Response) -> DatasetPublic:
    """Import a base network and zones (GeoJSON FeatureCollections or a TNTP upload)."""
    if isinstance(body, GeoJsonDatasetCreate):
        network = _from_geojson(body, services.limits.max_features)
    else:
        network = _from_tntp(body, services.limits.max_features)
    dataset_id = services.app.import_dataset(caller.tenant, body.name, network, caller.actor,
                                             source_format=body.format)
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
                                      max_features)
    if network is None:
        raise ApiProblem(
            422, "Invalid dataset", f"{len(problems)} feature(s) rejected; nothing was stored",
            problems=[str(p) for p in problems],
            features=[{"collection": p.collection, "index": p.index, "reason": p.reason}
                      for p in problems])
    return network


def _from_tntp(body: TntpDatasetCreate, max_features: int) -> Network:
    network, problems = parse_tntp(body.net, body.trips, body.node, max_features)
    if network is None:
        raise ApiProblem(422, "Invalid dataset",
                         f"{len(problems)} TNTP line(s) rejected; nothing was stored",
                         problems=problems)
    return network
