"""A run's skims (time, distance, generalized cost per class), streamed as OMX or CSV, and its
select-link analyses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from uuid import UUID

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from adapters.demand_matrix import DemandMatrix, read_select_link
from api.problems import ApiProblem
from api.routes.demand import MEDIA_TYPES, chunks, gated, gated_download, omx_or_409
from api.security import Services, Viewer
from api.services import ApiServices
from domain.application import Cartolog
from domain.simulation import COMPLETED

router = APIRouter(prefix="/v1/simulations", tags=["results"])


@router.get("/{run_id}/skims")
async def download_skims(
    run_id: UUID, caller: Viewer, services: Services,
    vehicle_class: Annotated[str | None, Query(alias="class", max_length=64)] = None,
    measure: Annotated[Literal["time", "distance", "cost"] | None, Query()] = None,
    format: Annotated[Literal["omx", "csv"], Query()] = "omx",
) -> StreamingResponse:
    """Zone-to-zone skims at the converged costs; `class` and `measure` narrow them."""
    def build() -> Iterator[bytes | str]:
        matrix = _selected(_skims(services.app, caller.tenant, run_id), vehicle_class, measure)
        return chunks(omx_or_409(matrix)) if format == "omx" else _csv(matrix)

    body = await gated_download(caller.tenant, build)
    name = f"skims-{run_id}.{format}"
    return StreamingResponse(body, media_type=MEDIA_TYPES[format],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/{run_id}/select-link/{name}")
async def select_link(run_id: UUID, name: str, caller: Viewer, services: Services,
                      top: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict[str, Any]:
    """A select-link analysis of the run: per class, the selected demand's total, its top OD
    pairs and the link flows of only that demand."""
    return await gated(caller.tenant, lambda: _analysis(services, caller.tenant, run_id, name,
                                                        top))


def _analysis(services: ApiServices, tenant: str, run_id: UUID, name: str, top: int
              ) -> dict[str, Any]:
    header, matrix = read_select_link(select_link_blob(services.app, tenant, run_id, name))
    classes = {cls: _summary(matrix, table, top) for cls, table in matrix.trips.items()}
    return {"name": header["name"], "mode": header["mode"], "links": header["links"],
            "classes": classes, "link_flows": header["link_flows"]}


def _summary(matrix: DemandMatrix, table: np.ndarray, top: int) -> dict[str, Any]:
    order = np.argsort(table, axis=None)[::-1][:top]
    pairs = [{"origin": matrix.zone_ids[i], "destination": matrix.zone_ids[j],
              "trips": float(table[i, j])}
             for i, j in zip(*np.unravel_index(order, table.shape), strict=True)
             if table[i, j] > 0]
    return {"total_trips": float(table.sum()), "top_pairs": pairs}


def run_output(app: Cartolog, tenant: str, run_id: UUID) -> dict[str, Any]:
    """The completed run's output document (409 while it is not completed)."""
    run = app.get_run(tenant, run_id)
    if run.status != COMPLETED or run.result_sha256 is None:
        raise ApiProblem(409, "Run not completed", f"run {run_id} is {run.status}")
    output: dict[str, Any] = json.loads(app.blobs.get(tenant, run.result_sha256))
    return output


def select_link_blob(app: Cartolog, tenant: str, run_id: UUID, name: str) -> bytes:
    """The blob of the run's select-link analysis `name`; 404 saying why when there is none
    (never asked for, or too large to store: decision 0316)."""
    output = run_output(app, tenant, run_id)
    named = output.get("select_links", {})
    if name not in named:
        reason = output.get("omitted", {}).get(f"select-link analysis {name!r}")
        raise ApiProblem(404, "Not found", f"run {run_id} has no select-link analysis {name!r}"
                         + (f": {reason}" if reason else ""))
    return app.blobs.get(tenant, named[name])


def _skims(app: Cartolog, tenant: str, run_id: UUID) -> DemandMatrix:
    output = run_output(app, tenant, run_id)
    if "skims_sha256" not in output:
        reason = output.get("omitted", {}).get("skims", "external model")
        raise ApiProblem(404, "Not found", f"run {run_id} has no skims ({reason})")
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
