"""POST /v1/datasets as a multipart file upload: GMNS (zip), GeoPackage, Shapefile (zip) or
OpenStreetMap PBF. A JSON body goes on to api/routes/datasets.py: this route only matches
multipart/form-data, so both share one path."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path, PurePath
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Scope

from adapters.gis.problems import FeatureProblem, ImportRejected
from adapters.isolated import Bounds
from api.imports.files import (
    HEXAGON_KM_ABOVE,
    HEXAGON_KM_MAX,
    ImportOptions,
    parse_mapping,
    read_upload,
)
from api.routes.common import Writes
from api.routes.datasets import IMPORTS, stored
from api.schemas import DatasetPublic
from api.security import Editor, Services
from domain.errors import InvalidCommand
from domain.rules import MAX_INTEGER
from domain.values import Network

KNOWN_SUFFIXES = (".osm.pbf", ".pbf", ".gpkg", ".shp", ".zip")


class MultipartRoute(APIRoute):
    """Matches only requests whose body is multipart/form-data."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """No match for any other content type, so the JSON route answers those."""
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if not content_type.startswith("multipart/form-data"):
            return Match.NONE, {}
        return super().matches(scope)


router = APIRouter(prefix="/v1/datasets", tags=["datasets"], route_class=MultipartRoute)


@router.post("", status_code=201, response_model=DatasetPublic)
async def upload_dataset(
        caller: Editor, services: Services, writes: Writes, response: Response,
        file: Annotated[UploadFile, File(
            description="GMNS zip, .gpkg, Shapefile zip, .pbf, or a zip of TNTP files")],
        name: Annotated[str, Form(min_length=1, max_length=200)],
        format: Annotated[str | None, Form(description="gmns|gpkg|shapefile|osm|tntp")] = None,
        mapping: Annotated[str | None, Form(description="JSON: target -> source field")] = None,
        links_layer: Annotated[str, Form()] = "links",
        zones_layer: Annotated[str, Form()] = "zones",
        first_thru_node: Annotated[int | None, Form(
            ge=1, le=MAX_INTEGER,
            description="default: GMNS config.csv's, else 1; not for OSM or TNTP")] = None,
        hexagon_km: Annotated[float, Form(gt=HEXAGON_KM_ABOVE, le=HEXAGON_KM_MAX)] = 1.0,
        zones_file: Annotated[UploadFile | None, File(
            description="OSM: a GeoPackage or Shapefile zip of zone polygons")] = None,
        crs: Annotated[str | None, Form(description=(
            "the coordinates' CRS (e.g. EPSG:27700) when the file names none: TNTP node "
            "files, GMNS without config.csv's crs, a Shapefile without .prj"))] = None,
) -> DatasetPublic:
    """Import a network file; every bad feature is listed and nothing is stored on error.

    The file is read in a process of its own within CARTOLOG_API_UPLOAD_MEMORY_MB and
    CARTOLOG_API_UPLOAD_TIMEOUT_S, two at a time in this process and one per tenant
    (IMPORTS, decision 0710)."""
    options = ImportOptions(format, parse_mapping(mapping), links_layer, zones_layer,
                            first_thru_node, hexagon_km, services.limits.max_features,
                            crs=crs)
    async with IMPORTS.turn(caller.tenant):
        fmt, network = await run_in_threadpool(_read, file, zones_file, options,
                                                services.limits.upload_bounds)
        return await run_in_threadpool(stored, services, caller, writes, response, name,
                                       network, fmt)


def _read(file: UploadFile, zones_file: UploadFile | None, options: ImportOptions,
          bounds: Bounds) -> tuple[str, Network]:
    with tempfile.TemporaryDirectory(prefix="cartolog-upload-") as folder:
        path = _saved(file, Path(folder) / "network")
        if path.suffix.lower() == ".shp":
            raise ImportRejected("a Shapefile is several files", [FeatureProblem(
                "file", -1, "upload a Shapefile as a .zip holding its .shp, .shx, .dbf and "
                ".prj files")])
        zones = _saved(zones_file, Path(folder) / "zones") if zones_file else None
        try:
            return read_upload(path, replace(options, zones_file=zones), bounds)
        except InvalidCommand as error:
            raise _without_folder(error, folder) from None


def _saved(upload: UploadFile, folder: Path) -> Path:
    """The upload under its own base name when that is a plain file name (its suffix tells
    the format), else `upload` with the suffix: `..`, an empty name or one too long for the
    file system must not make the server fail."""
    folder.mkdir()
    path = folder / safe_name(upload.filename)
    with path.open("wb") as target:
        shutil.copyfileobj(upload.file, target)
    return path


def safe_name(filename: str | None) -> str:
    """A file name that can be created in a folder of ours: the client's base name (a
    Windows path's too) when it is plain, else `upload` plus the suffix that names the
    format."""
    name = PurePath((filename or "").replace("\\", "/")).name
    plain = (name not in ("", ".", "..") and len(name.encode()) <= 200
             and name.isprintable() and not name.startswith("."))
    if plain:
        return name
    lower = name.lower()
    suffix = next((s for s in KNOWN_SUFFIXES if lower.endswith(s)), "")
    return f"upload{suffix}"


def _without_folder(error: InvalidCommand, folder: str) -> InvalidCommand:
    """The refusal with the server's temporary folder taken out of its texts: the reader's
    messages (GDAL's especially) name the file by its full path."""
    places = [f"{prefix}{folder}{part}" for part in ("/network/", "/zones/", "/", "")
              for prefix in ("/vsizip/", "")]

    def clean(text: str) -> str:
        for place in places:
            text = text.replace(place, "")
        return text
    error.problems = [clean(p) for p in error.problems]
    error.args = tuple(clean(a) if isinstance(a, str) else a for a in error.args)
    return error
