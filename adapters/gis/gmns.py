"""GMNS (the Zephyr Foundation's General Modeling Network Specification) as CSV files.

Written: node.csv, link.csv, zone.csv, demand.csv (when the network has an OD matrix) and
config.csv. GMNS `capacity` is per lane, so links also carry two extension fields, which
GMNS allows: `link_capacity` (all lanes) and `vdf_fftt` (free-flow time), so a round trip is
exact. Read: the same files from a folder or a zip; without the extensions, capacity is
`capacity * lanes` and free-flow time `60 * length / free_speed`. A link with `directed` 0
(GMNS: undirected, travel both ways) becomes two links, the second with id
`<link_id>-reverse` (decision 0713).

Numbers are plain decimal text (domain.rules.decimal: no '1_0', 'inf' or 'nan'), finite and
at most rules.MAX_MAGNITUDE; ids and `facility_type` are whole numbers ('2.0' is 2, '1.5' is
refused).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely import wkt
from shapely.errors import ShapelyError

from adapters.gis.crs import Reproject, UnknownCrs, same_crs, to_wgs84
from adapters.gis.problems import FeatureProblem, ImportRejected
from domain import rules
from domain.values import Coordinate, Link, Network, Node, Zone, oriented

NODE_FIELDS = ("node_id", "x_coord", "y_coord", "zone_id", "node_type")
LINK_FIELDS = ("link_id", "from_node_id", "to_node_id", "directed", "length", "lanes",
               "free_speed", "capacity", "link_capacity", "vdf_fftt", "vdf_alpha", "vdf_beta",
               "toll", "facility_type", "geometry")
ZONE_FIELDS = ("zone_id", "node_id", "population", "jobs", "boundary")
MAX_ID = rules.MAX_INTEGER
# The rows read from node.csv, link.csv and zone.csv, and the links made of them (an
# undirected row makes two), unless the caller gives its own cap (CARTOLOG_API_MAX_FEATURES).
MAX_FEATURES = 200_000
# The id of the second direction of an undirected link (directed=0): `<link_id>-reverse`.
REVERSE_SUFFIX = "-reverse"
DIRECTED = {"1": True, "true": True, "0": False, "false": False}
CAPPED = ("node", "link", "zone")
# config.csv's units (GMNS: `long_length` for link lengths, `speed`) -> km and km/h, the
# units the model reads. Blank or no config.csv: km and km/h (decision 0715).
LENGTH_UNITS = {"km": 1.0, "kilometer": 1.0, "kilometers": 1.0, "kilometre": 1.0,
                "kilometres": 1.0, "mi": 1.609344, "mile": 1.609344, "miles": 1.609344,
                "m": 0.001, "meter": 0.001, "meters": 0.001, "metre": 0.001, "metres": 0.001,
                "ft": 0.0003048, "foot": 0.0003048, "feet": 0.0003048}
SPEED_UNITS = {"kmh": 1.0, "km/h": 1.0, "kph": 1.0, "km/hr": 1.0, "mph": 1.609344,
               "mi/h": 1.609344, "mi/hr": 1.609344, "m/s": 3.6, "mps": 3.6}
WGS84_NAMES = {"epsg:4326", "wgs84", "wgs 84", "ogc:crs84", "crs84", "4326"}
REQUIRED = {"node": ("node_id", "x_coord", "y_coord"),
            "link": ("link_id", "from_node_id", "to_node_id", "length"),
            "zone": ("zone_id",)}


def write_gmns(network: Network, out: zipfile.ZipFile) -> None:
    """The network's GMNS files into a zip."""
    centroid = {z.centroid_node: z.id for z in network.zones}
    out.writestr("node.csv", _csv(NODE_FIELDS, (
        (n.id, repr(n.x), repr(n.y), centroid.get(n.id, ""),
         "centroid" if n.id < network.first_thru_node else "") for n in network.nodes)))
    out.writestr("link.csv", _csv(LINK_FIELDS, (_link_row(k) for k in network.links)))
    out.writestr("zone.csv", _csv(ZONE_FIELDS, (
        (z.id, z.centroid_node, repr(z.population), repr(z.jobs), _boundary(z))
        for z in network.zones)))
    if network.od_matrix:
        out.writestr("demand.csv", _csv(("o_zone_id", "d_zone_id", "volume"),
                                        ((o, d, repr(t)) for o, d, t in network.od_matrix)))
    out.writestr("config.csv", _csv(
        ("dataset_name", "first_thru_node", "long_length", "speed", "crs"),
        [("cartolog", network.first_thru_node, "km", "kmh", "EPSG:4326")]))


def _link_row(link: Link) -> tuple[Any, ...]:
    speed = 60.0 * link.length / link.free_flow_time if link.free_flow_time > 0 else ""
    shape = wkt.dumps(shapely.LineString(link.geometry), rounding_precision=-1) \
        if len(link.geometry) >= 2 else ""
    return (link.id, link.from_node, link.to_node, 1, repr(link.length), repr(link.lanes),
            repr(speed) if speed != "" else "", repr(link.capacity / (link.lanes or 1.0)),
            repr(link.capacity), repr(link.free_flow_time), repr(link.b), repr(link.power),
            repr(link.toll), link.link_type, shape)


def _boundary(zone: Zone) -> str:
    if not zone.polygon:
        return ""
    text: str = wkt.dumps(shapely.Polygon(zone.polygon[0], zone.polygon[1:]),
                          rounding_precision=-1)
    return text


def _csv(fields: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows(rows)
    return buffer.getvalue()


# What reading a damaged or exotic zip raises besides BadZipFile: unsupported versions or
# compression (NotImplementedError), encrypted members (RuntimeError), a corrupt deflate
# stream (zlib.error), a truncated header (struct.error).
ZIP_ERRORS = (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError, ValueError,
              NotImplementedError, RuntimeError, zlib.error, struct.error)


# The most a GMNS upload's CSV files may expand to: 200,000 links at a few hundred bytes a
# row are some 60 MiB.
MAX_CSV_BYTES = 256 * 2**20


def gmns_files(path: Path) -> dict[str, str]:
    """The CSV texts of a GMNS folder or zip, by base name (node, link, zone ...)."""
    try:
        if path.is_dir():
            return {p.stem: p.read_text(encoding="utf-8-sig") for p in path.glob("*.csv")}
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if i.filename.endswith(".csv")]
            _check_expansion(members)
            return {Path(info.filename).stem: archive.read(info).decode("utf-8-sig")
                    for info in members}
    except ZIP_ERRORS as error:
        raise ImportRejected("the GMNS upload cannot be read", [
            FeatureProblem("file", -1, f"not a readable zip or folder: {error}")]) from None


def _check_expansion(members: list[zipfile.ZipInfo]) -> None:
    """Refuse a zip whose CSV files expand past MAX_CSV_BYTES before any is inflated (a few
    megabytes of zip can declare gigabytes: a zip bomb). A member that lies about its size
    still fails its CRC check, after zipfile has inflated up to 2 GB of it: the API reads
    uploads in a memory-bounded child for that (decision 0710)."""
    total = sum(info.file_size for info in members)
    if total > MAX_CSV_BYTES:
        raise ImportRejected("the GMNS upload is too large", [FeatureProblem(
            "file", -1, f"its CSV files expand to {total / 2**20:,.0f} MiB; at most "
                        f"{MAX_CSV_BYTES // 2**20} MiB are read")])


def read_gmns(files: Mapping[str, str], max_features: int = MAX_FEATURES,
              first_thru_node: int | None = None, crs: str | None = None) -> Network:
    """The network of GMNS files; ImportRejected lists every bad row. node.csv, link.csv and
    zone.csv may hold at most `max_features` rows each, and the links at most `max_features`
    once undirected rows are doubled. `first_thru_node`, when given, is used instead of
    config.csv's; `crs` is the coordinates' CRS when config.csv names none (coordinates in
    another CRS than WGS84 are reprojected, decision 0718)."""
    problems: list[FeatureProblem] = []
    tables = {kind: _rows(kind, files, problems, max_features)
              for kind in ("node", "link", "zone", "demand", "config")}
    config = tables["config"][0] if tables["config"] else {}
    units = _units(config, problems)
    reproject = _reprojection(config, crs, problems)
    nodes = _nodes(tables["node"], problems, reproject)
    links = _links(tables["link"], problems, units, {n.id: (n.x, n.y) for n in nodes},
                   reproject)
    if len(links) > max_features:
        problems.append(FeatureProblem("link.csv", -1, (
            f"its rows make {len(links)} links (an undirected row makes two); at most "
            f"{max_features} are accepted")))
    zones = _zones(tables["zone"], {n.id: n for n in nodes}, problems, reproject)
    od = _demand(tables["demand"], problems)
    first_thru = first_thru_node if first_thru_node is not None else _number(
        config, "first_thru_node", int, problems, "config", 0, default=1)
    if problems:
        raise ImportRejected(f"{len(problems)} GMNS row(s) rejected; nothing was stored",
                             problems)
    return Network(tuple(sorted(nodes, key=lambda n: n.id)), tuple(links), tuple(zones),
                   int(first_thru), tuple(od))


def _units(config: Mapping[str, str], problems: list[FeatureProblem]) -> tuple[float, float]:
    """(km per length unit, km/h per speed unit) from config.csv's `long_length` and
    `speed`."""
    found = []
    for key, table in (("long_length", LENGTH_UNITS), ("speed", SPEED_UNITS)):
        raw = (config.get(key) or "").strip()
        factor = table.get(raw.lower(), None) if raw else 1.0
        if factor is None:
            problems.append(FeatureProblem("config.csv", 0, (
                f"{key} {raw[:40]!r} is not a unit Cartolog converts: one of "
                f"{', '.join(sorted(table))}")))
            factor = 1.0
        found.append(factor)
    return found[0], found[1]


def _reprojection(config: Mapping[str, str], given: str | None,
                  problems: list[FeatureProblem]) -> Reproject | None:
    """How node.csv's, link.csv's and zone.csv's coordinates reach WGS84: config.csv's `crs`,
    else the import's `crs`, else they are WGS84 (None: nothing to do)."""
    named = (config.get("crs") or "").strip()
    try:
        if named and given and not same_crs(named, given):
            problems.append(FeatureProblem("config.csv", 0, (
                f"crs {named[:40]!r} is not the crs given ({given[:40]}): leave crs out to "
                "use config.csv's")))
            return None
        chosen = named or given
        return to_wgs84(chosen) if chosen and chosen.lower() not in WGS84_NAMES else None
    except UnknownCrs as error:
        problems.append(FeatureProblem("config.csv" if named else "crs", 0, f"crs {error}"))
        return None


def _rows(kind: str, files: Mapping[str, str], problems: list[FeatureProblem],
          max_features: int) -> list[dict[str, str]]:
    if kind not in files:
        if kind in ("node", "link"):
            problems.append(FeatureProblem(f"{kind}.csv", -1, "missing file"))
        return []
    reader = csv.DictReader(io.StringIO(files[kind]))
    missing = [f for f in REQUIRED.get(kind, ()) if f not in (reader.fieldnames or [])]
    if missing:
        problems.append(FeatureProblem(f"{kind}.csv", -1,
                                       f"missing field(s): {', '.join(missing)}"))
        return []
    try:
        if kind not in CAPPED:
            return list(reader)
        rows = list(itertools.islice(reader, max_features + 1))  # no more than that is read
    except csv.Error as error:
        problems.append(FeatureProblem(f"{kind}.csv", -1, f"malformed CSV: {error}"))
        return []
    if len(rows) > max_features:
        problems.append(FeatureProblem(f"{kind}.csv", -1, (
            f"more than {max_features} rows; at most {max_features} are accepted")))
        return []
    return rows


def _given(row: Mapping[str, Any], key: str) -> bool:
    return bool((row.get(key) or "").strip())


def _number(row: Mapping[str, Any], key: str, kind: type, problems: list[FeatureProblem],
            where: str, index: int, default: Any = None) -> Any:
    """The row's `key` as a finite float (at most rules.MAX_MAGNITUDE) or a whole number in
    0..MAX_ID; `default` when blank (a missing value is a problem when there is none). A bad
    value is a problem, and `default` is returned in its place."""
    raw = (row.get(key) or "").strip()
    if not raw:
        if default is None:
            problems.append(FeatureProblem(where, index, f"missing {key}"))
        return default
    value = rules.decimal(raw)
    reason = _number_problem(key, raw, value, kind is int)
    if reason is not None or value is None:
        problems.append(FeatureProblem(where, index, reason or f"{key} is not a number"))
        return default
    return int(value) if kind is int else value


def _number_problem(key: str, raw: str, value: float | None, whole: bool) -> str | None:
    if value is None:
        return rules.decimal_problem(key, raw)
    if not math.isfinite(value):
        return f"{key} must be a finite number, not {raw[:40]}"
    if whole and not value.is_integer():
        return f"{key} {raw[:40]!r} is not a whole number"
    if whole and not 0 <= value <= MAX_ID:
        return f"{key} {raw[:40]} is outside 0..{MAX_ID}"
    if abs(value) > rules.MAX_MAGNITUDE:
        return f"{key} must be at most {rules.MAX_MAGNITUDE:g} in magnitude, not {raw[:40]}"
    return None


def _nodes(rows: list[dict[str, str]], problems: list[FeatureProblem],
           reproject: Reproject | None) -> list[Node]:
    nodes = []
    for i, row in enumerate(rows):
        values = [_number(row, k, t, problems, "node.csv", i)
                  for k, t in (("node_id", int), ("x_coord", float), ("y_coord", float))]
        if None not in values:
            nodes.append(Node(*values))
    if reproject is None or not nodes:
        return nodes
    placed = reproject(np.array([(n.x, n.y) for n in nodes], dtype=float))
    return [Node(n.id, float(x), float(y)) for n, (x, y) in zip(nodes, placed, strict=True)]


def _links(rows: list[dict[str, str]], problems: list[FeatureProblem],
           units: tuple[float, float], where: Mapping[int, Coordinate],
           reproject: Reproject | None = None) -> list[Link]:
    """The links of link.csv's rows, lengths in km, each line running from its from-node
    (GMNS `dir_flag` -1 draws it the other way: it is turned round)."""
    texts = np.array([(row.get("geometry") or "").strip() for row in rows] or [""],
                     dtype=object)
    shapes = shapely.from_wkt(texts, on_invalid="ignore")
    if reproject is not None:
        shapes = shapely.transform(shapes, reproject)
    links: list[Link] = []
    undirected: list[tuple[int, Link]] = []
    for i, row in enumerate(rows):
        before = len(problems)
        link = _link(row, _line(texts[i], shapes[i], problems, i), problems, i, units)
        if link is not None:
            link = _oriented(link, where, problems, i)
        both = _undirected(row, problems, i)
        if link is not None and len(problems) == before:
            links.append(link)
            if both:
                undirected.append((i, link))
    return links + _reversed(undirected, {link.id for link in links}, problems)


def _oriented(link: Link, where: Mapping[int, Coordinate], problems: list[FeatureProblem],
              i: int) -> Link | None:
    """`link` with its line running from its from-node to its to-node, as the GeoJSON import
    reads it (domain.values.oriented); None, with the problem, when the line does not join
    them."""
    if link.from_node not in where or link.to_node not in where:
        return link  # an unknown node the domain's checks name
    drawn, problem = oriented(link, where[link.from_node], where[link.to_node],
                              "node.csv places the nodes")
    if drawn is None:
        problems.append(FeatureProblem("link.csv", i, str(problem)))
    return drawn


def _undirected(row: Mapping[str, str], problems: list[FeatureProblem], i: int) -> bool:
    """Whether the row is an undirected link (GMNS `directed` false); blank is directed."""
    raw = (row.get("directed") or "").strip()
    if not raw:
        return False
    directed = DIRECTED.get(raw.lower())
    if directed is None:
        problems.append(FeatureProblem("link.csv", i, (
            f"directed {raw[:40]!r} must be 1 or 0 (true or false)")))
        return False
    return not directed


def _reversed(undirected: list[tuple[int, Link]], ids: set[str],
              problems: list[FeatureProblem]) -> list[Link]:
    """The second direction of each undirected link: from its to-node to its from-node, the
    same attributes, the shape reversed, id `<link_id>-reverse` (decision 0713)."""
    found = []
    for i, link in undirected:
        reverse = f"{link.id}{REVERSE_SUFFIX}"
        if reverse in ids:
            problems.append(FeatureProblem("link.csv", i, (
                f"link {link.id!r} is undirected (directed=0): its reverse direction would be "
                f"link {reverse!r}, and link.csv already has a link of that id")))
        elif len(reverse) > rules.MAX_ID:
            problems.append(FeatureProblem("link.csv", i, (
                f"link_id of an undirected link (directed=0) must be at most "
                f"{rules.MAX_ID - len(REVERSE_SUFFIX)} characters: its reverse direction is "
                f"'<link_id>{REVERSE_SUFFIX}'")))
        else:
            found.append(replace(link, id=reverse, from_node=link.to_node,
                                 to_node=link.from_node, geometry=link.geometry[::-1]))
    return found


def _link(row: Mapping[str, str], shape: tuple[Coordinate, ...],
          problems: list[FeatureProblem], i: int, units: tuple[float, float]) -> Link | None:
    def get(key: str, default: float | None = None) -> Any:
        return _number(row, key, float, problems, "link.csv", i, default)

    def refuse(reason: str) -> None:
        problems.append(FeatureProblem("link.csv", i, reason))
    lanes, length = get("lanes", 1.0), get("length")
    if length is not None:
        length *= units[0]  # in km, as the model reads it
    if _given(row, "vdf_fftt"):
        fftt = get("vdf_fftt", 0.0)
        if fftt < 0:
            refuse("vdf_fftt must not be negative")
    else:
        speed = get("free_speed")
        fftt = 60.0 * length / (speed * units[1]) if speed and length is not None else None
        if speed is not None and speed <= 0:
            refuse("free_speed must be positive")
    if _given(row, "link_capacity"):
        capacity = get("link_capacity", 0.0)
        if capacity <= 0:  # the domain refuses a link without capacity (rules.number_problem)
            refuse("link_capacity must be positive")
    else:
        per_lane = get("capacity")
        capacity = per_lane * lanes if per_lane is not None else None
        if per_lane is not None and per_lane <= 0:
            refuse("capacity must be positive")
    if not (row.get("link_id") or "").strip():
        refuse("missing link_id")
    ends = [_number(row, k, int, problems, "link.csv", i)
            for k in ("from_node_id", "to_node_id")]
    link_type = _facility_type(row, problems, i)
    if None in (length, fftt, capacity, *ends):
        return None
    return Link(row["link_id"].strip(), ends[0], ends[1], capacity, length, fftt,
                get("vdf_alpha", 0.15), get("vdf_beta", 4.0), get("toll", 0.0), link_type,
                lanes, shape)


def _facility_type(row: Mapping[str, str], problems: list[FeatureProblem], i: int) -> int:
    """The link type: `facility_type` as a whole number 0..MAX_ID or one of
    rules.LINK_TYPE_NAMES' names ('Primary', 'minor arterial'); blank, `link_type`'s number;
    both blank, 1."""
    raw = (row.get("facility_type") or "").strip()
    key = "facility_type" if raw else "link_type"
    if raw and rules.decimal(raw) is None and not raw.lstrip("+-").isdigit():
        named = rules.link_type_named(raw)
        if named is not None:
            return named
        problems.append(FeatureProblem("link.csv", i, rules.link_type_name_problem(
            "facility_type", raw)))
        return 1
    value: int = _number(row, key, int, problems, "link.csv", i, 1)
    return value


def _line(text: str, shape: Any, problems: list[FeatureProblem], i: int
          ) -> tuple[Coordinate, ...]:
    """A link's shape, parsed beforehand for all links at once (None: not WKT)."""
    if not text:
        return ()
    if shape is None:
        problems.append(FeatureProblem("link.csv", i, "geometry is not WKT"))
        return ()
    if shape.geom_type != "LineString":
        problems.append(FeatureProblem("link.csv", i, "geometry must be a LINESTRING"))
        return ()
    return tuple((x, y) for x, y in shapely.get_coordinates(shape).tolist())


def _zones(rows: list[dict[str, str]], nodes: Mapping[int, Node],
           problems: list[FeatureProblem], reproject: Reproject | None = None) -> list[Zone]:
    zones = []
    for i, row in enumerate(rows):
        zone_id = _number(row, "zone_id", int, problems, "zone.csv", i)
        centroid = _number(row, "node_id", int, problems, "zone.csv", i, default=zone_id)
        population = _number(row, "population", float, problems, "zone.csv", i, 0.0)
        jobs = _number(row, "jobs", float, problems, "zone.csv", i, 0.0)
        rings = _polygon(row.get("boundary") or "", problems, i, reproject)
        if zone_id is not None and rings is not None:
            zones.append(Zone(zone_id, centroid, population, jobs, rings))
    return zones


def _polygon(text: str, problems: list[FeatureProblem], i: int,
             reproject: Reproject | None = None
             ) -> tuple[tuple[Coordinate, ...], ...] | None:
    if not text.strip():
        return ()
    try:
        shape = wkt.loads(text)
    except (ShapelyError, ValueError):
        problems.append(FeatureProblem("zone.csv", i, "boundary is not WKT"))
        return None
    if shape.geom_type != "Polygon" or not shape.is_valid:
        reason = shapely.is_valid_reason(shape) if shape.geom_type == "Polygon" else "not a POLYGON"
        problems.append(FeatureProblem("zone.csv", i, f"invalid boundary: {reason}"))
        return None
    if reproject is not None:
        shape = shapely.transform(shape, reproject)
    rings = [shape.exterior, *shape.interiors]
    return tuple(tuple((float(x), float(y)) for x, y, *_ in r.coords) for r in rings)


def _demand(rows: list[dict[str, str]], problems: list[FeatureProblem]
            ) -> list[tuple[int, int, float]]:
    od = []
    for i, row in enumerate(rows):
        values = [_number(row, k, t, problems, "demand.csv", i)
                  for k, t in (("o_zone_id", int), ("d_zone_id", int), ("volume", float))]
        if None not in values:
            od.append((values[0], values[1], values[2]))
    return od
