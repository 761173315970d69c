"""OGC API - Features (Core, GeoJSON, OpenAPI 3.0) at /ogc/, per tenant, behind the JWT."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api import ogc_layers
from api.ogc_layers import Collection
from api.ogc_openapi import OPENAPI_MEDIA, openapi_document
from api.problems import ApiProblem
from api.reads import TenantReads
from api.routes.results import box
from api.security import Services, Viewer

router = APIRouter(prefix="/ogc", tags=["ogc-api-features"])
GEOJSON = "application/geo+json"
JSON = "application/json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
DEFAULT_LIMIT, MAX_LIMIT = 100, 10_000
ITEMS_PARAMETERS = {"limit", "offset", "bbox", "datetime", "f"}


def tenant_reads(caller: Viewer, services: Services) -> TenantReads:
    """The caller's tenant's read model as it is: a GIS client never waits for a write."""
    return TenantReads(services.engine, caller.tenant)


Reads = Annotated[TenantReads, Depends(tenant_reads)]


@router.get("/", summary="Landing page")
def landing(request: Request, reads: Reads) -> JSONResponse:
    """The OGC API landing page: links to the API definition, conformance and collections."""
    base = _base(request)
    return _json({
        "title": f"Cartolog: {reads.tenant}",
        "description": "Scenario networks and simulation results of this tenant.",
        "links": [
            _link(f"{base}/", "self", JSON, "This document"),
            _link(f"{base}/api", "service-desc", OPENAPI_MEDIA, "The API definition"),
            _link(f"{base}/conformance", "conformance", JSON, "Conformance classes"),
            _link(f"{base}/collections", "data", JSON, "Feature collections"),
        ]})


@router.get("/api", summary="API definition")
def api_definition(request: Request, reads: Reads) -> JSONResponse:
    """This API as an OpenAPI 3.0 document."""
    return JSONResponse(openapi_document(_base(request)), media_type=OPENAPI_MEDIA)


@router.get("/conformance", summary="Conformance classes")
def conformance(request: Request, reads: Reads) -> JSONResponse:
    """The conformance classes this API implements."""
    return _json({"conformsTo": CONFORMANCE})


@router.get("/collections", summary="Feature collections")
def list_collections(request: Request, reads: Reads) -> JSONResponse:
    """Each scenario's links and zones, and each completed run's link and zone results."""
    base = _base(request)
    described = [_describe(c, base) for c in ogc_layers.collections(reads)]
    return _json({"links": [_link(f"{base}/collections", "self", JSON, "This document")],
                  "collections": described})


@router.get("/collections/{collection_id}", summary="One feature collection")
def get_collection(collection_id: str, request: Request, reads: Reads) -> JSONResponse:
    """One collection's description."""
    return _json(_describe(_collection(reads, collection_id, True), _base(request)))


@router.get("/collections/{collection_id}/items", summary="Features",
            responses={200: {"content": {GEOJSON: {}}}})
def items(collection_id: str, request: Request, reads: Reads) -> JSONResponse:
    """A page of features: `bbox` (CRS84), `limit` (1..10000, default 100), `offset`."""
    query = request.query_params
    unknown = sorted(set(query) - ITEMS_PARAMETERS)
    if unknown:
        raise _bad(f"unknown query parameter(s): {', '.join(unknown)}")
    limit = min(_integer(query.get("limit"), DEFAULT_LIMIT, "limit", 1), MAX_LIMIT)
    offset = _integer(query.get("offset"), 0, "offset", 0)
    filtered = _bbox(query.get("bbox"))
    collection = _collection(reads, collection_id, False)
    matched = ogc_layers.count(reads, collection, filtered)
    features = ogc_layers.page(reads, collection, filtered, offset, limit)
    return _json(_feature_collection(request, features, matched, offset, limit), GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id:path}", summary="One feature",
            responses={200: {"content": {GEOJSON: {}}}})
def item(collection_id: str, feature_id: str, request: Request, reads: Reads) -> JSONResponse:
    """One feature by its id (link id or zone number). A link id may hold `/`, `?` or `#`:
    a client sends it percent-encoded, which the server decodes before routing, so the id
    is the rest of the path; the `self` link encodes it again."""
    collection = _collection(reads, collection_id, False)
    found = ogc_layers.one(reads, collection, feature_id)
    if found is None:
        raise ApiProblem(404, "Not found", f"no feature {feature_id!r} in {collection_id}")
    items_url = f"{_base(request)}/collections/{collection_id}/items"
    here = f"{items_url}/{quote(feature_id, safe='')}"
    found["links"] = [_link(here, "self", GEOJSON, "This feature"),
                      _link(f"{_base(request)}/collections/{collection_id}", "collection",
                            JSON, "The collection")]
    return _json(found, GEOJSON)


def _feature_collection(request: Request, features: list[dict[str, Any]], matched: int,
                        offset: int, limit: int) -> dict[str, Any]:
    links = [_link(str(request.url), "self", GEOJSON, "This page")]
    if offset + len(features) < matched:
        following = request.url.include_query_params(offset=offset + limit, limit=limit)
        links.append(_link(str(following), "next", GEOJSON, "Next page"))
    return {"type": "FeatureCollection", "features": features, "links": links,
            "numberMatched": matched, "numberReturned": len(features),
            "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")}


def _describe(collection: Collection, base: str) -> dict[str, Any]:
    url = f"{base}/collections/{collection.id}"
    described: dict[str, Any] = {
        "id": collection.id, "title": collection.title, "itemType": "feature",
        "crs": [CRS84],
        "links": [_link(url, "self", JSON, "This collection"),
                  _link(f"{url}/items", "items", GEOJSON, "Its features")]}
    if collection.extent is not None:
        described["extent"] = {"spatial": {"bbox": [list(collection.extent)], "crs": CRS84}}
    return described


def _collection(reads: TenantReads, collection_id: str, with_extent: bool) -> Collection:
    found = ogc_layers.find(reads, collection_id, with_extent)
    if found is None:
        raise ApiProblem(404, "Not found", f"no collection {collection_id!r}")
    return found


def _base(request: Request) -> str:
    """The absolute /ogc URL as the client addressed it (GDAL needs absolute links)."""
    return str(request.base_url).rstrip("/") + "/ogc"


def _link(href: str, rel: str, media: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media, "title": title}


def _json(body: dict[str, Any], media: str = JSON) -> JSONResponse:
    return JSONResponse(body, media_type=media)


def _integer(raw: str | None, default: int, name: str, least: int) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < least:
        raise _bad(f"{name} must be an integer of at least {least}")
    return int(raw)


def _bbox(raw: str | None) -> dict[str, Any]:
    try:
        return box(raw)
    except ApiProblem as problem:
        raise _bad(problem.detail) from None


def _bad(detail: str) -> ApiProblem:
    return ApiProblem(400, "Bad request", detail)
