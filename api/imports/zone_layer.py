"""Zones from a planner's polygon layer (GeoPackage or Shapefile) for a network that came
without zones (OpenStreetMap): each polygon becomes a zone attached to the network node
nearest its representative point, and goes through the GeoJSON zone checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.errors import ShapelyError

from adapters.gis.problems import FeatureProblem, ImportRejected
from api.geojson_import import parse_zones
from api.imports.layers import layer_mapping, layer_source, read_collection
from domain.values import Network


def with_zone_layer(network: Network, path: Path, layer: str = "zones",
                    mapping: Mapping[str, str] | None = None) -> Network:
    """`network` with its zones replaced by the polygons of `layer` in the file at `path`."""
    source = layer_source(path)
    chosen = dict(mapping or {})
    if "id" in chosen:  # no links layer here: a bare `id` can only be the zones' id
        chosen.setdefault("zones.id", chosen.pop("id"))
    fields = {k: v for k, v in layer_mapping(chosen, "zones").items() if k != "centroid_node"}
    zones = read_collection(source, layer, fields)
    nodes = np.array([(n.x, n.y) for n in network.nodes])
    for feature in zones["features"]:
        feature["properties"]["centroid_node"] = _nearest(feature, nodes, network)
    parsed, problems = parse_zones(zones, {n.id for n in network.nodes}, 200_000)
    if parsed is None:
        raise ImportRejected(f"{len(problems)} zone(s) rejected; nothing was stored",
                             [FeatureProblem(p.collection, p.index, p.reason)
                              for p in problems])
    return replace(network, zones=parsed, od_matrix=())


def _nearest(feature: dict[str, Any], nodes: np.ndarray, network: Network) -> int | None:
    try:
        point = shapely.geometry.shape(feature["geometry"]).representative_point()
    except (ShapelyError, AttributeError, KeyError, TypeError, ValueError):
        return None
    scale = np.cos(np.radians(point.y))
    distances = ((nodes[:, 0] - point.x) * scale) ** 2 + (nodes[:, 1] - point.y) ** 2
    return network.nodes[int(np.argmin(distances))].id
