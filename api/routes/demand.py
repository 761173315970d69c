"""A scenario's demand matrix: upload OMX or CSV (a new scenario version), download, remove."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from adapters import demand_matrix
from api.matrix_gate import DownloadGate, MatrixGate, Stream
from api.problems import ApiProblem
from api.routes.common import Writes
from api.routes.scenarios import etag, expected_version
from api.schemas import DemandMatrixPublic, EditsPublic, VehicleClassesUpdate
from api.security import Caller, Editor, Services, Viewer
from api.services import ApiServices
from domain.demand import VehicleClassSpec

router = APIRouter(prefix="/v1/scenarios", tags=["demand"])
T = TypeVar("T")
MatrixFormat = Annotated[Literal["omx", "csv"], Query(
    description="omx (an OpenMatrix file with a zone mapping) or csv "
                "(origin,destination,trips[,class])")]
IfMatch = Annotated[str | None, Header(description="The scenario version (its ETag)")]
MEDIA_TYPES = {"omx": "application/x-omx", "csv": "text/csv"}
CHUNK = 1024 * 1024
# One matrix upload parsed and stored at a time in this process: each may hold ~2 x 256 MB
# (its tables and its blob, adapters.demand_matrix.MAX_CELLS); others wait up to 30 s, then
# get a 503 with Retry-After (decision 0707).
MATRIX_GATE = MatrixGate(slots=1, wait_s=30.0, retry_after_s=10)
# Matrix downloads (demand, skims, select-link): two built at once, one per tenant, and two
# streaming per tenant (decision 0708).
DOWNLOADS = DownloadGate(slots=2, streams_per_tenant=2, wait_s=30.0, retry_after_s=10)


async def gated_download(tenant: str, build: Callable[[], Iterator[bytes | str]]) -> Stream:
    """A download's body, built in a worker thread under DOWNLOADS and counted among the
    tenant's streams until it has been sent."""
    stream = DOWNLOADS.open_stream(tenant)
    try:
        async with DOWNLOADS.building(tenant):
            parts = await run_in_threadpool(build)
    except BaseException:
        stream.close()
        raise
    return stream.body(parts)


async def gated(tenant: str, build: Callable[[], T]) -> T:
    """A response built in a worker thread under DOWNLOADS (it holds a matrix blob)."""
    async with DOWNLOADS.building(tenant):
        return await run_in_threadpool(build)


@router.post("/{scenario_id}/demand", response_model=DemandMatrixPublic)
async def upload_demand(scenario_id: UUID, request: Request, caller: Editor,
                        services: Services, writes: Writes, response: Response,
                        format: MatrixFormat, if_match: IfMatch = None) -> DemandMatrixPublic:
    """Make the uploaded matrix the scenario's demand; every mismatch is a 422."""
    expected = expected_version(if_match)
    content = await request.body()
    async with MATRIX_GATE.admitted():
        version = await run_in_threadpool(_store, services, caller, scenario_id, expected,
                                          content, format)
    writes.record(caller.tenant, scenario_id, version)
    response.headers["ETag"] = etag(version)
    scenario = services.app.get_scenario(caller.tenant, scenario_id, version)
    assert scenario.demand_matrix is not None
    return DemandMatrixPublic(scenario_id=scenario_id, version=version,
                              **scenario.demand_matrix)


@router.get("/{scenario_id}/demand")
async def download_demand(scenario_id: UUID, caller: Viewer, services: Services,
                          format: MatrixFormat = "omx",
                          version: Annotated[int | None, Query(ge=1, le=10**9)] = None,
                          ) -> StreamingResponse:
    """The scenario's demand matrix as OMX or CSV (404 when it uses the gravity model)."""
    def build() -> Iterator[bytes | str]:
        content = services.app.demand_matrix_content(caller.tenant, scenario_id, version)
        matrix = demand_matrix.DemandMatrix.from_blob(content)
        return chunks(omx_or_409(matrix)) if format == "omx" else demand_matrix.write_csv(matrix)

    body = await gated_download(caller.tenant, build)
    name = f"demand-{scenario_id}.{format}"
    return StreamingResponse(body, media_type=MEDIA_TYPES[format],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.delete("/{scenario_id}/demand", status_code=204)
def remove_demand(scenario_id: UUID, caller: Editor, services: Services, writes: Writes,
                  response: Response, if_match: IfMatch = None) -> Response:
    """Go back to the gravity model (a new scenario version)."""
    version = services.app.remove_demand_matrix(caller.tenant, scenario_id,
                                                expected_version(if_match), caller.actor)
    writes.record(caller.tenant, scenario_id, version)
    return Response(status_code=204, headers={"ETag": etag(version)})


@router.put("/{scenario_id}/vehicle-classes", response_model=EditsPublic)
def declare_vehicle_classes(scenario_id: UUID, body: VehicleClassesUpdate, caller: Editor,
                            services: Services, writes: Writes, response: Response,
                            if_match: IfMatch = None) -> EditsPublic:
    """Declare the scenario's vehicle classes (a new version); the demand matrix names each."""
    classes = [VehicleClassSpec(**{**c.model_dump(), "allowed_link_types": None
                                   if c.allowed_link_types is None
                                   else tuple(c.allowed_link_types)}) for c in body.classes]
    version = services.app.declare_vehicle_classes(caller.tenant, scenario_id,
                                                   expected_version(if_match), classes,
                                                   caller.actor)
    writes.record(caller.tenant, scenario_id, version)
    response.headers["ETag"] = etag(version)
    return EditsPublic(scenario_id=scenario_id, version=version)


def _store(services: ApiServices, caller: Caller, scenario_id: UUID, expected: int,
           content: bytes, file_format: str) -> int:
    max_zones = services.app.zone_count(caller.tenant, scenario_id)
    upload = demand_matrix.upload(content, file_format, max_zones, services.limits.matrix_cells,
                                  services.limits.upload_bounds)
    return services.app.set_demand_matrix(caller.tenant, scenario_id, expected, upload,
                                          caller.actor)


def omx_or_409(matrix: demand_matrix.DemandMatrix) -> bytes:
    """The matrix as an OMX file, or a 409 when a stored class name cannot name an OMX
    matrix (names stored before the name rule, decision 0707); CSV has no such limit."""
    try:
        return demand_matrix.write_omx(matrix)
    except demand_matrix.OmxNameError as error:
        raise ApiProblem(409, "Not representable as OMX",
                         "a stored class name cannot be an OMX matrix name; "
                         "download it with format=csv", problems=error.problems) from None


def chunks(content: bytes) -> Iterator[bytes]:
    for start in range(0, len(content), CHUNK):
        yield content[start:start + CHUNK]
