"""GeoPackage or Shapefile (via pyogrio): a links layer and a zones layer, read through a
field mapping and then through the same checks as a GeoJSON import.

Default mapping (a Cartolog GeoPackage export imports unchanged): links `link_id`,
`from_node`, `to_node`, `capacity`, `length`, `free_flow_time`, and optional `b`, `power`,
`toll`, `lanes`, `link_type`; zones `zone_id`, `centroid_node`, `population`, `jobs`.
Shapefile names are cut to 10 characters, so `free_flow_time` is also looked up as
`free_flow_`. Layers in another CRS are reprojected to WGS84 longitude/latitude (decision
0718); a layer that names no CRS (a Shapefile without its .prj) takes the import's `crs`.

A user's mapping (target -> source field) applies each key to its own layer: link fields to
the links, zone fields to the zones (`layer_mapping`). `links.KEY` and `zones.KEY` name the
layer outright. A bare `id` is the link id; the zones' id stays `zone_id` unless the zones
layer has no such field, when the bare `id` field is used for them too (as it always was).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyogrio import list_layers
from pyogrio.errors import DataLayerError, DataSourceError
from pyogrio.raw import read
from shapely.errors import ShapelyError

from adapters.gis.crs import Reproject, UnknownCrs, parsed, same_crs, to_wgs84
from adapters.gis.problems import FeatureProblem, ImportRejected
from api.geojson_import import parse_network
from domain.values import Network

LINK_MAPPING = {"id": "link_id", "from_node": "from_node", "to_node": "to_node",
                "capacity": "capacity", "length": "length",
                "free_flow_time": "free_flow_time", "b": "b", "power": "power",
                "toll": "toll", "lanes": "lanes", "link_type": "link_type"}
ZONE_MAPPING = {"id": "zone_id", "centroid_node": "centroid_node",
                "population": "population", "jobs": "jobs"}
Fields = str | tuple[str, ...]  # a source field, or several: the first the layer has


def read_layers(path: Path, mapping: Mapping[str, str] | None = None,
                links_layer: str = "links", zones_layer: str = "zones",
                first_thru_node: int = 1, max_features: int = 200_000,
                crs: str | None = None) -> Network:
    """The network in a GeoPackage, a Shapefile folder or a zip of Shapefiles; `crs` is the
    CRS of a layer that names none."""
    source = layer_source(path)
    links = read_collection(source, links_layer, layer_mapping(mapping or {}, "links"), crs)
    zones = read_collection(source, zones_layer, layer_mapping(mapping or {}, "zones"), crs)
    network, problems = parse_network(links, zones, first_thru_node, max_features)
    if network is None:
        found = [FeatureProblem(p.collection, p.index, p.reason) for p in problems]
        raise ImportRejected(f"{len(found)} feature(s) rejected; nothing was stored", found)
    every = sorted(network.zones, key=lambda z: z.id)
    return replace(network, zones=tuple(every), od_matrix=_demand(source))


def layer_source(path: Path) -> str:
    """What GDAL opens for `path`: the file or folder itself, or for a zip the folder inside
    it that holds the Shapefiles, which is the zip's root unless the user zipped a folder
    (`city.zip` holding `city/links.shp`). macOS's `__MACOSX/` copies are not a folder of
    Shapefiles; two real folders are refused by name rather than guessed between."""
    if path.suffix.lower() != ".zip":
        return str(path)
    import zipfile

    from adapters.gis.gmns import ZIP_ERRORS
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except ZIP_ERRORS:
        return f"/vsizip/{path}"  # GDAL names what is wrong with it
    folders = {name.rpartition("/")[0] for name in names if name.lower().endswith(".shp")
               and not name.startswith("__MACOSX/")}
    if len(folders) > 1 and "" not in folders:
        shown = ", ".join(f"{folder}/" for folder in sorted(folders)[:5])
        raise ImportRejected("the zip holds Shapefiles in several folders", [FeatureProblem(
            "file", -1, f"the zip holds Shapefiles in {shown}: put the links and zones "
            "layers in one folder (or at the top of the zip)")])
    inner = folders.pop() if len(folders) == 1 else ""
    return f"/vsizip/{path}/{inner}" if inner else f"/vsizip/{path}"


def layer_mapping(mapping: Mapping[str, str], layer: str) -> dict[str, Fields]:
    """Target -> source field(s) for `layer` ("links" or "zones"): the defaults, then the
    user's keys that belong to that layer (see the module's docstring)."""
    defaults = LINK_MAPPING if layer == "links" else ZONE_MAPPING
    chosen: dict[str, Fields] = dict(defaults)
    for key, field_name in mapping.items():
        prefix, dot, target = key.partition(".")
        if dot and prefix in ("links", "zones"):
            if prefix == layer:
                chosen[target] = field_name
        elif key not in defaults:
            continue  # another layer's field (or none's: ignored, as it always was)
        elif key == "id" and layer == "zones":
            if f"{layer}.id" not in mapping:
                chosen["id"] = (ZONE_MAPPING["id"], field_name)
        else:
            chosen[key] = field_name
    return chosen


def _demand(source: str) -> tuple[tuple[int, int, float], ...]:
    """The `demand` table (o_zone_id, d_zone_id, volume) a Cartolog export carries, if any."""
    if "demand" not in {str(name) for name, _ in list_layers(source)}:
        return ()
    meta, _, _, columns = read(source, layer="demand", read_geometry=False)
    found = dict(zip(meta["fields"], columns, strict=True))
    try:
        return tuple((int(o), int(d), float(v)) for o, d, v in zip(
            found["o_zone_id"], found["d_zone_id"], found["volume"], strict=True))
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ImportRejected("the demand table is unusable", [FeatureProblem(
            "demand", -1, "needs whole-number o_zone_id, d_zone_id and a volume")]) from None


def read_collection(source: str, layer: str, mapping: Mapping[str, Fields],
                    crs: str | None = None) -> dict[str, Any]:
    """A layer as a GeoJSON FeatureCollection in WGS84 with properties renamed by `mapping`
    (a target given several source fields takes the first the layer has); `crs` is the
    layer's CRS when it names none, and must agree with the one it names."""
    try:
        meta, _, geometries, columns = read(source, layer=layer)
    except (DataSourceError, DataLayerError) as error:
        raise ImportRejected(f"layer {layer!r} cannot be read", [
            FeatureProblem(layer, -1, _first_line(error))]) from None
    reproject = _reprojection(layer, meta.get("crs"), crs)
    if reproject is not None and geometries is not None:
        geometries = _reprojected(geometries, reproject)
    fields = {name: values for name, values in zip(meta["fields"], columns, strict=True)}
    mapped = {target: _field(fields, source_name) for target, source_name in mapping.items()}
    count = len(geometries) if geometries is not None else 0
    return {"type": "FeatureCollection", "features": [
        _feature(geometries[i], {k: _plain(v[i]) for k, v in mapped.items() if v is not None})
        for i in range(count)]}


def _reprojection(layer: str, found: str | None, given: str | None) -> Reproject | None:
    """How the layer's coordinates reach WGS84 (None: they are WGS84 already)."""
    try:
        if not found:
            if not given:
                raise ImportRejected(f"layer {layer!r} names no CRS", [FeatureProblem(
                    layer, -1, "the layer names no coordinate reference system (a Shapefile "
                    "without its .prj file): include it, or give the import's crs")])
            return to_wgs84(given)
        if given and not same_crs(given, found):
            raise ImportRejected(f"layer {layer!r} is in another CRS", [FeatureProblem(
                layer, -1, f"the layer is in {_short(found)}, not the crs given "
                f"({given[:60]}): leave crs out to use the layer's own")])
        return to_wgs84(found)
    except UnknownCrs as error:
        raise ImportRejected(f"layer {layer!r} cannot be reprojected", [FeatureProblem(
            layer, -1, str(error))]) from None


def _short(crs: str) -> str:
    code = parsed(crs).to_authority()
    return ":".join(code) if code else crs[:60]


def _reprojected(geometries: Any, reproject: Reproject) -> list[bytes | None]:
    """WKB geometries with every coordinate reprojected (unreadable ones left as they are:
    the feature checks name them)."""
    out: list[bytes | None] = []
    for wkb in geometries:
        try:
            shape = shapely.from_wkb(wkb) if wkb is not None else None
        except ShapelyError:
            shape = None
        out.append(wkb if shape is None else shapely.to_wkb(
            shapely.transform(shape, reproject)))
    return out


def _field(fields: Mapping[str, Any], names: Fields) -> Any:
    for name in (names,) if isinstance(names, str) else names:
        for candidate in (name, name[:10]):
            if candidate in fields:
                return fields[candidate]
    return None


def _feature(wkb: bytes | None, properties: dict[str, Any]) -> dict[str, Any]:
    try:
        shape = shapely.from_wkb(wkb) if wkb is not None else None
    except ShapelyError:
        shape = None
    if shape is not None and shape.geom_type == "MultiPolygon" and len(shape.geoms) == 1:
        shape = shape.geoms[0]
    if shape is not None and shape.geom_type == "MultiLineString" and len(shape.geoms) == 1:
        shape = shape.geoms[0]
    geometry = _lists(shape.__geo_interface__) if shape is not None else None
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _lists(value: Any) -> Any:
    """Tuples as lists: the GeoJSON checks expect JSON's shapes."""
    if isinstance(value, tuple | list):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        number = float(value)
        return None if math.isnan(number) else number
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__
