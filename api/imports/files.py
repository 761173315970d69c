"""One entry for every file format: pick the reader by format (or file name) and return the
domain Network, or ImportRejected naming every bad feature."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from adapters.gis.crs import UnknownCrs, parsed
from adapters.gis.gmns import gmns_files, read_gmns
from adapters.gis.osm import OsmOptions, read_osm
from adapters.gis.problems import FeatureProblem, ImportRejected
from adapters.isolated import Bounds, IsolatedFailure, preload, run_isolated
from api.imports.layers import LINK_MAPPING, ZONE_MAPPING, read_layers
from api.imports.zone_layer import with_zone_layer
from api.tntp_import import TNTP_NAME, holds_tntp, network_from_tntp_folder
from domain import rules
from domain.errors import InvalidCommand
from domain.values import Network

preload(__name__)  # uploads are read in a child process (read_upload)

FORMATS = ("gmns", "gpkg", "shapefile", "osm", "tntp")
# The width of OSM zone hexagons, km: over HEXAGON_KM_ABOVE, at most HEXAGON_KM_MAX (the API
# form and the CLI apply the same bounds).
HEXAGON_KM_ABOVE = 0.05
HEXAGON_KM_MAX = 50.0
# The longest field mapping accepted, as JSON text: a mapping names a few dozen fields.
MAX_MAPPING_TEXT = 10_000
# The longest crs accepted: an EPSG code, or a WKT definition of a few kilobytes.
MAX_CRS_TEXT = 10_000


@dataclass(frozen=True)
class ImportOptions:
    """What comes with an upload besides the file (each has a documented default)."""

    format: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    links_layer: str = "links"
    zones_layer: str = "zones"
    first_thru_node: int | None = None  # None: GMNS config.csv's, else 1
    hexagon_km: float = 1.0
    max_features: int = 200_000
    zones_file: Path | None = None
    crs: str | None = None  # the coordinates' CRS when the file names none (decision 0718)


def guess_format(path: Path) -> str | None:
    """The format a file name suggests."""
    name = path.name.lower()
    if name.endswith((".osm.pbf", ".pbf")):
        return "osm"
    if name.endswith(".gpkg"):
        return "gpkg"
    if name.endswith(".shp"):
        return "shapefile"
    if TNTP_NAME.search(name) or ((path.is_dir() or name.endswith(".zip"))
                                  and holds_tntp(path)):
        return "tntp"
    if path.is_dir() or name.endswith(".zip"):
        return "shapefile" if _has_shapefile(path) else "gmns"
    return None


def _has_shapefile(path: Path) -> bool:
    if path.is_dir():
        return any(path.glob("*.shp"))
    import zipfile

    from adapters.gis.gmns import ZIP_ERRORS
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.lower().endswith(".shp") for n in archive.namelist())
    except ZIP_ERRORS:
        return False


def read_upload(path: Path, options: ImportOptions, bounds: Bounds) -> tuple[str, Network]:
    """`read_network` in a process of its own (decision 0710): a file that crashes GDAL or
    libosmium, expands past `bounds.memory_mb` (a zip or PBF bomb) or reads for longer than
    `bounds.timeout_s` is rejected, and the API serving every tenant carries on."""
    try:
        return run_isolated(read_network, (path, options), bounds, what="the uploaded file",
                            reader="its reader", expected=(InvalidCommand,))
    except IsolatedFailure as failure:
        raise ImportRejected("the file could not be read; nothing was stored", [
            FeatureProblem("file", -1, str(failure))]) from None


def option_problems(options: ImportOptions) -> list[FeatureProblem]:
    """The options' broken rules (the API form checks the same bounds)."""
    found = []
    if options.first_thru_node is not None:
        problem = rules.integer_problem("first_thru_node", options.first_thru_node)
        if problem:
            found.append(FeatureProblem("first_thru_node", -1, problem))
    unknown = [key for key in options.mapping if not mapping_key_known(key)]
    if unknown:
        found.append(FeatureProblem("mapping", -1, (
            f"{', '.join(repr(k[:40]) for k in unknown[:5])} "
            f"{'is not a field' if len(unknown) == 1 else 'are not fields'} Cartolog reads: "
            f"links take {', '.join(LINK_MAPPING)}; zones take {', '.join(ZONE_MAPPING)} "
            "(either may be prefixed 'links.' or 'zones.')")))
    if options.crs is not None:
        problem = rules.text_problem("crs", options.crs, MAX_CRS_TEXT, multiline=True)
        if problem is None:
            try:
                parsed(options.crs)
            except UnknownCrs as error:
                problem = f"crs {error}"
        if problem:
            found.append(FeatureProblem("crs", -1, problem))
    if not HEXAGON_KM_ABOVE < options.hexagon_km <= HEXAGON_KM_MAX:  # NaN fails too
        found.append(FeatureProblem("hexagon_km", -1, (
            f"hexagon_km must be over {HEXAGON_KM_ABOVE:g} and at most {HEXAGON_KM_MAX:g} km, "
            f"not {options.hexagon_km:g}")))
    return found


def mapping_key_known(key: str) -> bool:
    """Whether a mapping key names a field some layer reads (a typo such as 'capcity' would
    otherwise be ignored and the import would fail, or worse succeed, on the default name)."""
    prefix, dot, target = key.partition(".")
    if dot and prefix == "links":
        return target in LINK_MAPPING
    if dot and prefix == "zones":
        return target in ZONE_MAPPING
    return key in LINK_MAPPING or key in ZONE_MAPPING


def read_network(path: Path, options: ImportOptions) -> tuple[str, Network]:
    """(format, network) of an uploaded file."""
    fmt = options.format or guess_format(path)
    if fmt not in FORMATS:
        raise ImportRejected("unknown file format", [FeatureProblem(
            "file", -1, f"format must be one of {', '.join(FORMATS)} (or a file name "
            "ending .zip, .gpkg, .shp or .osm.pbf, or a folder)")])
    problems = option_problems(options)
    if fmt == "osm" and options.first_thru_node not in (None, 1):
        problems.append(FeatureProblem("first_thru_node", -1, (
            "first_thru_node cannot be set for an OSM file: every node of an OSM network is "
            "a road node (first_thru_node 1), zones are attached to them")))
    problems.extend(_not_for(fmt, options))
    if problems:
        raise ImportRejected("the import options were rejected; nothing was stored", problems)
    if fmt == "gmns":
        return fmt, read_gmns(gmns_files(path), options.max_features, options.first_thru_node,
                              options.crs)
    if fmt == "tntp":
        return fmt, _tntp(path, options)
    if fmt == "osm":
        network = read_osm(path, OsmOptions(options.hexagon_km, options.max_features))
        if options.zones_file is None:
            return fmt, network
        return fmt, with_zone_layer(network, options.zones_file, options.zones_layer,
                                    options.mapping)
    first_thru = 1 if options.first_thru_node is None else options.first_thru_node
    return fmt, read_layers(path, options.mapping, options.links_layer, options.zones_layer,
                            first_thru, options.max_features, options.crs)


def _not_for(fmt: str, options: ImportOptions) -> list[FeatureProblem]:
    """The options that mean nothing for this format, refused rather than ignored."""
    found = []
    if fmt == "tntp" and options.first_thru_node is not None:
        found.append(FeatureProblem("first_thru_node", -1, (
            "first_thru_node cannot be set for TNTP files: the net file's <FIRST THRU NODE> "
            "says it")))
    if fmt == "tntp" and options.mapping:
        found.append(FeatureProblem("mapping", -1, (
            "a field mapping cannot be set for TNTP files: their columns are named by the "
            "net file's header")))
    if fmt == "osm" and options.crs:
        found.append(FeatureProblem("crs", -1, "crs cannot be set for an OSM file: OSM "
                                               "coordinates are WGS84 longitude/latitude"))
    return found


def _tntp(path: Path, options: ImportOptions) -> Network:
    """A TNTP folder or zip (or the folder of a `*_net.tntp` named directly)."""
    source = path.parent if path.is_file() and TNTP_NAME.search(path.name.lower()) else path
    try:
        return network_from_tntp_folder(source, options.max_features, options.crs)
    except InvalidCommand as error:
        raise ImportRejected("the TNTP files were rejected; nothing was stored",
                             [FeatureProblem("tntp", -1, p) for p in error.problems]) from None


def parse_mapping(raw: str | None) -> dict[str, str]:
    """A field mapping given as JSON text: {"capacity": "CAP", ...}."""
    if not raw:
        return {}
    if len(raw) > MAX_MAPPING_TEXT:
        raise ImportRejected("the field mapping is too long", [FeatureProblem(
            "mapping", -1, f"{len(raw)} characters; at most {MAX_MAPPING_TEXT} are accepted")])
    try:
        mapping = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ImportRejected("the field mapping is not JSON", [
            FeatureProblem("mapping", -1, str(error))]) from None
    except RecursionError:  # '[[[[...' nested past the interpreter's recursion limit
        raise ImportRejected("the field mapping must map names to names", [FeatureProblem(
            "mapping", -1, 'nested too deeply; expected {"target": "source field", ...}')]
            ) from None
    if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ImportRejected("the field mapping must map names to names", [
            FeatureProblem("mapping", -1, 'expected {"target": "source field", ...}')])
    return mapping
