"""The OpenAPI 3.0 definition of /ogc/ (conformance class OAS30), written out by hand:
FastAPI's own document is OpenAPI 3.1, which OGC API - Features Part 1 does not name."""

from __future__ import annotations

from typing import Any

OPENAPI_MEDIA = "application/vnd.oai.openapi+json;version=3.0"


def _parameter(name: str, where: str, schema: dict[str, Any], text: str,
               required: bool = False, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema,
            "description": text, **extra}


def _ok(media: str, text: str) -> dict[str, Any]:
    return {"200": {"description": text, "content": {media: {"schema": {"type": "object"}}}},
            "400": {"description": "A query parameter is unknown or invalid"},
            "401": {"description": "No valid bearer token"},
            "404": {"description": "No such collection or feature in this tenant"}}


COLLECTION = _parameter("collectionId", "path", {"type": "string"},
                        "scenario-UUID-links|zones or run-UUID-links|zones", True)
ITEMS_PARAMETERS = [
    COLLECTION,
    _parameter("limit", "query", {"type": "integer", "minimum": 1, "maximum": 10000,
                                  "default": 100}, "Features per page", style="form",
               explode=False),
    _parameter("offset", "query", {"type": "integer", "minimum": 0, "default": 0},
               "Features skipped (the `next` links carry it)"),
    _parameter("bbox", "query", {"type": "array", "minItems": 4, "maxItems": 4,
                                 "items": {"type": "number"}},
               "minLon,minLat,maxLon,maxLat in CRS84", style="form", explode=False),
    _parameter("datetime", "query", {"type": "string"},
               "Accepted and ignored: these features have no time", style="form",
               explode=False),
]


def _operation(operation_id: str, summary: str, responses: dict[str, Any],
               parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"get": {"operationId": operation_id, "summary": summary, "tags": ["Features"],
                    "parameters": parameters or [], "responses": responses}}


def openapi_document(base: str) -> dict[str, Any]:
    """The document, with the server URL as the client addressed it."""
    json, geojson = "application/json", "application/geo+json"
    return {
        "openapi": "3.0.3",
        "info": {"title": "Cartolog OGC API - Features", "version": "1.0.0",
                 "description": "Scenario networks and simulation results of one tenant."},
        "servers": [{"url": base}],
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "bearerFormat": "JWT"}}},
        "paths": {
            "/": _operation("getLandingPage", "Landing page", _ok(json, "Landing page")),
            "/api": _operation("getApi", "This document",
                               _ok(OPENAPI_MEDIA, "The API definition")),
            "/conformance": _operation("getConformance", "Conformance classes",
                                       _ok(json, "Conformance classes")),
            "/collections": _operation("getCollections", "Feature collections",
                                       _ok(json, "The collections")),
            "/collections/{collectionId}": _operation(
                "describeCollection", "One collection", _ok(json, "The collection"),
                [COLLECTION]),
            "/collections/{collectionId}/items": _operation(
                "getFeatures", "Features of a collection",
                _ok(geojson, "A page of features"), ITEMS_PARAMETERS),
            "/collections/{collectionId}/items/{featureId}": _operation(
                "getFeature", "One feature", _ok(geojson, "The feature"),
                [COLLECTION, _parameter("featureId", "path", {"type": "string"},
                                        "Link id or zone number", True)]),
        },
    }
