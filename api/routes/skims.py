"""A run's skims (time, distance, generalized cost per class), streamed as OMX or CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Literal
from uuid import UUID

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from adapters.demand_matrix import DemandMatrix, write_omx
from api.problems import ApiProblem
from api.routes.demand import MEDIA_TYPES, chunks
from api.security import Services, Viewer
from domain.application import Cartolog
from domain.simulation import COMPLETED

router = APIRouter(prefix="/v1/simulations", tags=["results"])


@router.get("/{run_id}/skims")
def download_skims(
    run_id: UUID, caller: Viewer, services: Services,
    vehicle_class: Annotated[str | None, Query(alias="class", max_length=64)] = None,
    measure: Annotated[Literal["time", "distance", "cost"] | None, Query()] = None,
    format: Annotated[Literal["omx", "csv"], Query()] = "omx",
) -> StreamingResponse:
    """Zone-to-zone skims at the converged costs; `class` and `measure` narrow them."""
    matrix = _selected(_skims(services.app, caller.tenant, run_id), vehicle_class, measure)
    body = chunks(write_omx(matrix)) if format == "omx" else _csv(matrix)
    name = f"skims-{run_id}.{format}"
    return StreamingResponse(body, media_type=MEDIA_TYPES[format],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _skims(app: Cartolog, tenant: str, run_id: UUID) -> DemandMatrix:
    run = app.get_run(tenant, run_id)
    if run.status != COMPLETED or run.result_sha256 is None:
        raise ApiProblem(409, "Run not completed", f"run {run_id} is {run.status}")
    output = json.loads(app.blobs.get(tenant, run.result_sha256))
    if "skims_sha256" not in output:
        raise ApiProblem(404, "Not found", f"run {run_id} has no skims (external model)")
    return DemandMatrix.from_blob(app.blobs.get(tenant, output["skims_sha256"]))


def _selected(matrix: DemandMatrix, vehicle_class: str | None,
              measure: str | None) -> DemandMatrix:
    def wanted(key: str) -> bool:
        name, _, kind = key.rpartition("_")
        return vehicle_class in (None, name) and measure in (None, kind)

    tables = {key: table for key, table in matrix.trips.items() if wanted(key)}
    if not tables:
        classes = sorted({key.rpartition("_")[0] for key in matrix.trips})
        raise ApiProblem(422, "Invalid request", f"no class {vehicle_class!r}",
                         problems=[f"class must be one of {', '.join(classes)}"])
    return DemandMatrix(matrix.zone_ids, tables)


def _csv(matrix: DemandMatrix) -> Iterator[str]:
    yield "origin,destination,class,measure,value\n"
    zone_ids = np.array(matrix.zone_ids, dtype=np.int64)
    for key, table in matrix.trips.items():
        name, _, kind = key.rpartition("_")
        for i, origin in enumerate(zone_ids):
            yield "".join(f"{origin},{destination},{name},{kind},{float(value)!r}\n"
                          for destination, value in zip(zone_ids, table[i], strict=True))
