"""Exports a GIS opens: a scenario's network at a version, a run's results (streamed files)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from adapters.gis.exports import ExportFile, export_run, export_scenario, scenario_network
from api.routes.demand import gated
from api.routes.results import completed_run
from api.security import Services, Viewer

router = APIRouter(prefix="/v1", tags=["exports"])
MEDIA_TYPES = ("application/geopackage+sqlite3", "application/zip", "application/geo+json")
FILE: dict[int | str, dict[str, Any]] = {200: {"content": {m: {} for m in MEDIA_TYPES}}}


@router.get("/scenarios/{scenario_id}/export", response_class=FileResponse, responses=FILE)
async def export_scenario_network(
        scenario_id: UUID, caller: Viewer, services: Services,
        format: Annotated[Literal["gpkg", "gmns", "geojson"], Query()] = "gpkg",
        version: Annotated[int | None, Query(ge=1, le=10**9)] = None) -> FileResponse:
    """The scenario's network (now or at `version`) as GeoPackage, GMNS zip or GeoJSON."""
    def build(folder: Path) -> ExportFile:
        name, network = scenario_network(services.app, caller.tenant, scenario_id, version)
        return export_scenario(network, name, format, folder)

    return await _exported(caller.tenant, build)


@router.get("/simulations/{run_id}/export", response_class=FileResponse, responses=FILE)
async def export_run_results(
        run_id: UUID, caller: Viewer, services: Services,
        format: Annotated[Literal["gpkg", "csv"], Query()] = "gpkg") -> FileResponse:
    """Links and zones with results, and indicators: one styled GeoPackage or CSV files."""
    def build(folder: Path) -> ExportFile:
        reads = completed_run(services, caller.tenant, run_id)
        run = services.app.get_run(caller.tenant, run_id)
        name, network = scenario_network(services.app, caller.tenant, run.scenario_id,
                                         run.scenario_version)
        return export_run(network, reads.rows, str(run_id), name, format, folder)

    return await _exported(caller.tenant, build)


async def _exported(tenant: str, build: Callable[[Path], ExportFile]) -> FileResponse:
    """The file `build` writes into a fresh folder, built under the download gate (it holds
    the whole network: decision 0708) and sent in chunks; the folder is removed once the file
    was sent, or at once when building fails."""
    folder = Path(tempfile.mkdtemp(prefix="cartolog-export-"))
    try:
        exported = await gated(tenant, lambda: build(folder))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(exported.path, media_type=exported.media_type,
                        filename=exported.filename,
                        background=BackgroundTask(shutil.rmtree, folder, True))
