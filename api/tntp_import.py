"""TNTP uploads (the `net`, `trips` and optional `node` files of github.com/bstabler/
TransportationNetworks) → a domain Network, listing every rejected line.

Plain Python: the API process never loads the model package (and numba) to read an upload.
The domain's rules (`Network.problems`) then check the network like any other import.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adapters.isolated import preload
from domain.errors import InvalidCommand
from domain.rules import MAX_INTEGER, decimal, decimal_problem, whole_number
from domain.values import Coordinate, Link, Network, Node, Zone

preload(__name__)  # the API reads TNTP uploads in a child process (api/routes/datasets.py)

META = re.compile(r"^\s*<([^>]+)>\s*(.*)$")
TRIP_CELL = re.compile(r"(\S+)\s*:\s*([^;\s]+)\s*;?")
NET_COLUMNS = ("init_node", "term_node", "capacity", "length", "free_flow_time", "b", "power")
MAX_PROBLEMS = 50
# Fields 9 and 10 hold toll and link type, unless the header names them otherwise.
STANDARD_EXTRAS: tuple[int | None, int | None] = (8, 9)


class Rejected(Exception):
    """A line that cannot be read; the message names the file and line."""


@dataclass
class Upload:
    """What was read so far and every problem found on the way."""

    max_features: int
    problems: list[str] = field(default_factory=list)

    def keep(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def parse_tntp(net: str, trips: str, node: str | None, max_features: int,
               crs: str | None = None) -> tuple[Network | None, list[str]]:
    """The network, or None and every problem found (each naming its file and line). The
    node file's coordinates are in `crs` when given (reprojected to WGS84, decision 0718),
    else they must be longitude/latitude."""
    upload = Upload(max_features)
    links, first_thru, declared_nodes = _links(net, upload)
    coordinates = _nodes(node, upload) if node is not None else {}
    coordinates = _in_wgs84(coordinates, crs, upload)
    node_ids = _node_ids(links, coordinates, declared_nodes, upload)
    zones, od = _trips(trips, upload)
    if upload.problems:
        return None, upload.problems
    nodes = tuple(Node(i, *coordinates.get(i, (0.0, 0.0))) for i in sorted(node_ids))
    return _network(nodes, links, zones, od, first_thru), []


def network_from_tntp_folder(folder: Path | str, max_features: int = 1_000_000,
                             crs: str | None = None) -> Network:
    """The network of a folder (or zip) holding one `*_net.tntp`, one `*_trips.tntp` and an
    optional `*_node.tntp`; InvalidCommand lists every problem. `crs` is the node file's
    coordinate reference system when it is not WGS84 longitude/latitude."""
    texts = tntp_texts(Path(folder))
    net, trips = texts.get("net"), texts.get("trips")
    if net is None or trips is None:
        raise InvalidCommand(f"{Path(folder).name}: a TNTP upload needs *_net.tntp and "
                             "*_trips.tntp (each may be gzipped, .tntp.gz)")
    network, problems = parse_tntp(net, trips, texts.get("node"), max_features, crs)
    if network is None:
        raise InvalidCommand(f"{Path(folder).name}: the TNTP files were rejected", problems)
    return network


# The names of TNTP files, as github.com/bstabler/TransportationNetworks spells them in any
# case (`Birmingham_Net.tntp`, `Birmingham_Nodes.tntp`): `_flow` and `_toll` files are not
# read.
TNTP_NAME = re.compile(r"_(net|trips|nodes?)\.tntp(\.gz)?$", re.IGNORECASE)
# The most the TNTP files of an upload may expand to (Sydney's are some 60 MB; a zip of a
# few megabytes can declare gigabytes).
MAX_TNTP_BYTES = 1024 * 2**20


KINDS = {"net": "net", "trips": "trips", "node": "node", "nodes": "node"}


def tntp_kind(name: str) -> str | None:
    """`net`, `trips` or `node` for a TNTP file name, else None."""
    match = TNTP_NAME.search(name)
    return None if match is None else KINDS[match.group(1).lower()]


def holds_tntp(path: Path) -> bool:
    """Whether a folder or zip holds a TNTP net file."""
    try:
        return any(tntp_kind(name) == "net" for name in _member_names(path))
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def tntp_texts(path: Path) -> dict[str, str]:
    """The texts of a folder's or zip's TNTP files by kind (`net`, `trips`, `node`),
    gunzipped; InvalidCommand when one is unreadable or a kind comes twice."""
    try:
        blobs = _folder_files(path) if path.is_dir() else _zip_files(path)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, ValueError,
            NotImplementedError, RuntimeError) as error:
        raise InvalidCommand(f"{path.name}: not a readable folder or zip of TNTP files "
                             f"({error})") from None
    found: dict[str, str] = {}
    for name in sorted(blobs):
        kind = tntp_kind(name) or ""
        if kind in found:
            raise InvalidCommand(f"{path.name}: more than one *_{kind}.tntp[.gz]")
        found[kind] = _text(name, blobs[name])
    return found


def _folder_files(folder: Path) -> dict[str, bytes]:
    named = [p for p in folder.iterdir() if p.is_file() and tntp_kind(p.name)]
    _check_size(sum(p.stat().st_size for p in named))
    return {p.name: p.read_bytes() for p in named}


def _zip_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist()
                   if not info.filename.startswith("__MACOSX/") and tntp_kind(info.filename)]
        _check_size(sum(info.file_size for info in members))
        return {info.filename: archive.read(info) for info in members}


def _member_names(path: Path) -> list[str]:
    if path.is_dir():
        return [p.name for p in path.iterdir()]
    with zipfile.ZipFile(path) as archive:
        return [n for n in archive.namelist() if not n.startswith("__MACOSX/")]


def _check_size(total: int) -> None:
    if total > MAX_TNTP_BYTES:
        raise InvalidCommand(f"the TNTP files expand to {total / 2**20:,.0f} MiB; at most "
                             f"{MAX_TNTP_BYTES // 2**20} MiB are read")


def _text(name: str, data: bytes) -> str:
    if name.lower().endswith(".gz"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
                data = handle.read(MAX_TNTP_BYTES + 1)
            _check_size(len(data))
        except (OSError, EOFError, zlib.error) as error:
            raise InvalidCommand(f"{Path(name).name}: not a readable gzip file "
                                 f"({error})") from None
    return data.decode("utf-8", errors="replace")


def _network(nodes: tuple[Node, ...], links: list[Link], zone_count: int,
             od: dict[tuple[int, int], float], first_thru: int) -> Network:
    """Zones get population = trips produced and jobs = trips attracted; the OD matrix is kept."""
    produced = dict.fromkeys(range(1, zone_count + 1), 0.0)
    attracted = dict(produced)
    for (origin, destination), count in od.items():
        produced[origin] += count
        attracted[destination] += count
    coordinates = {n.id: (n.x, n.y) for n in nodes}
    placed = [_placed(link, coordinates) for link in links]
    zones = tuple(Zone(z, z, produced[z], attracted[z]) for z in produced)
    matrix = tuple((o, d, t) for (o, d), t in sorted(od.items()) if t != 0)
    return Network(nodes, tuple(placed), zones, first_thru_node=first_thru, od_matrix=matrix)


def _placed(link: Link, coordinates: dict[int, Coordinate]) -> Link:
    start = coordinates.get(link.from_node, (0.0, 0.0))
    end = coordinates.get(link.to_node, (0.0, 0.0))
    if start == end == (0.0, 0.0):
        return link
    return Link(**{**link.__dict__, "geometry": (start, end)})


def _sections(text: str) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """Metadata (tags before <END OF METADATA>) and the numbered body lines after it."""
    metadata: dict[str, str] = {}
    body: list[tuple[int, str]] = []
    lines = text.splitlines()
    in_body = not any("<END OF METADATA>" in line for line in lines)
    for number, line in enumerate(lines, start=1):
        match = META.match(line)
        if not in_body and match:
            if match.group(1) == "END OF METADATA":
                in_body = True
            else:
                metadata[match.group(1).strip()] = match.group(2).strip()
        elif in_body and line.strip() and not line.lstrip().startswith("~"):
            body.append((number, line))
    return metadata, body


def number(text: str, where: str, column: str) -> float:
    """A finite number, or Rejected naming where."""
    value = decimal(text)
    if value is None:
        raise Rejected(f"{where}: {decimal_problem(column, text)}")
    if not math.isfinite(value):
        raise Rejected(f"{where}: {column} must be a finite number, not {text.strip()[:40]}")
    return value


def integer(text: str, where: str, column: str, low: int = 1) -> int:
    """An integer in low..MAX_INTEGER, or Rejected naming where."""
    value = number(text, where, column)
    if value != int(value) or not low <= value <= MAX_INTEGER:
        raise Rejected(f"{where}: {column} {text[:40]!r} is not an integer in "
                       f"{low}..{MAX_INTEGER}")
    return int(value)


def _links(text: str, upload: Upload) -> tuple[list[Link], int, int | None]:
    metadata, body = _sections(text)
    first_thru, declared = 1, None
    try:
        first_thru = integer(metadata.get("FIRST THRU NODE", "1"), "net", "FIRST THRU NODE")
        if "NUMBER OF NODES" in metadata:
            declared = integer(metadata["NUMBER OF NODES"], "net", "NUMBER OF NODES", 0)
    except Rejected as error:
        upload.keep(str(error))
    if not body:
        upload.keep("net: no links")
    if len(body) > upload.max_features:
        upload.keep(f"net: {len(body)} links: at most {upload.max_features} are accepted")
        return [], first_thru, declared
    positions = extra_positions(text.splitlines())
    links: list[Link] = []
    for number_, line in body:
        try:
            links.append(_link(len(links) + 1, f"net line {number_}", line, positions))
        except Rejected as error:
            upload.keep(str(error))
    _check_link_count(metadata, len(body), upload)
    return links, first_thru, declared


def _check_link_count(metadata: dict[str, str], rows: int, upload: Upload) -> None:
    """The header's <NUMBER OF LINKS> against the rows (every file of the TNTP repository
    agrees: a difference is a file cut short, or rows added without the tag)."""
    if "NUMBER OF LINKS" not in metadata:
        return
    try:
        declared = integer(metadata["NUMBER OF LINKS"], "net", "NUMBER OF LINKS", 0)
    except Rejected as error:
        upload.keep(str(error))
        return
    if declared != rows:
        upload.keep(f"net: <NUMBER OF LINKS> {declared} but the file holds {rows} link "
                    "rows: is it cut short? (correct the tag if rows were added or removed)")


# How far the trips may add up from <TOTAL OD FLOW>: files print it to six significant
# digits (Terrassa's 2.52257e+007 for 25,225,746.76), a file cut short misses whole origins.
TOTAL_TOLERANCE = 1e-4


def _check_total(metadata: dict[str, str], od: dict[tuple[int, int], float],
                 upload: Upload) -> None:
    text = metadata.get("TOTAL OD FLOW")
    if text is None:
        return
    try:
        declared = number(text.split()[0] if text.split() else "", "trips", "TOTAL OD FLOW")
    except Rejected as error:
        upload.keep(str(error))
        return
    total = math.fsum(od.values())
    if abs(total - declared) > TOTAL_TOLERANCE * max(abs(declared), 1.0):
        upload.keep(f"trips: <TOTAL OD FLOW> {declared:.10g} but the trips add up to "
                    f"{total:.10g}: is the file cut short? (correct the tag if it was "
                    "edited)")


def extra_positions(lines: list[str]) -> tuple[int | None, int | None]:
    """Where rows hold toll and link type: fields 9 and 10, unless the file's
    ``~ init_node term_node ...`` header names other columns there (Sydney and Gold Coast
    have ``speed critical_speed lanes``: no toll, no link type). None: not in the file's first
    ten fields. The model's TNTP reader places columns by the same rule."""
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith("~"):
            names = stripped[1:].replace(";", " ").lower().split()
            extras = names[len(NET_COLUMNS):len(NET_COLUMNS) + 3]
            if (names[:2] != ["init_node", "term_node"]
                    or extras == ["speed", "toll", "link_type"][:len(extras)]):
                return STANDARD_EXTRAS
            found = {name: len(NET_COLUMNS) + i for i, name in reversed(list(enumerate(extras)))}
            return found.get("toll"), found.get("link_type", found.get("type"))
    return STANDARD_EXTRAS


def _link(index: int, where: str, line: str,
          positions: tuple[int | None, int | None] = STANDARD_EXTRAS) -> Link:
    fields = line.replace(";", " ").split()
    if len(fields) < len(NET_COLUMNS):
        raise Rejected(f"{where}: expected at least {len(NET_COLUMNS)} fields, "
                       f"found {len(fields)}")
    ends = [integer(fields[i], where, NET_COLUMNS[i]) for i in (0, 1)]
    values = [number(fields[i], where, NET_COLUMNS[i]) for i in range(2, 7)]
    for extra in range(7, min(len(fields), 10)):  # every field the model reads is a number
        if extra not in positions:
            number(fields[extra], where, f"field {extra + 1}")
    toll_at, type_at = positions
    toll = number(fields[toll_at], where, "toll") if toll_at is not None and len(
        fields) > toll_at else 0.0
    link_type = integer(fields[type_at], where, "type", 0) if type_at is not None and len(
        fields) > type_at else 1
    capacity, length, free_flow_time, b, power = values
    return Link(id=str(index), from_node=ends[0], to_node=ends[1], capacity=capacity,
                length=length, free_flow_time=free_flow_time, b=b, power=power, toll=toll,
                link_type=link_type)


def _nodes(text: str, upload: Upload) -> dict[int, Coordinate]:
    coordinates: dict[int, Coordinate] = {}
    for number_, line in enumerate(text.splitlines(), start=1):
        fields = line.replace(";", " ").split()
        if not fields or (number_ == 1 and not fields[0].lstrip("-").isdigit()):
            continue
        where = f"node line {number_}"
        try:
            if len(fields) < 3:
                raise Rejected(f"{where}: expected node, x, y")
            node = integer(fields[0], where, "node")
            coordinates[node] = (number(fields[1], where, "x"), number(fields[2], where, "y"))
        except Rejected as error:
            upload.keep(str(error))
        if len(coordinates) > upload.max_features:
            upload.keep(f"node: at most {upload.max_features} nodes are accepted")
            break
    return coordinates


def _in_wgs84(coordinates: dict[int, Coordinate], crs: str | None, upload: Upload
              ) -> dict[int, Coordinate]:
    """The node file's coordinates in WGS84: reprojected from `crs`, or checked to be
    longitude/latitude already (one problem for the file rather than one per node: TNTP node
    files are often in a projected CRS nobody wrote down)."""
    from adapters.gis.crs import UnknownCrs, lon_lat, to_wgs84
    try:
        reproject = to_wgs84(crs) if crs else None
    except UnknownCrs as error:
        upload.keep(f"crs {error}")
        return {}
    if not coordinates:
        return coordinates
    if reproject is None:
        outside = next(((i, xy) for i, xy in coordinates.items() if not lon_lat(*xy)), None)
        if outside is not None and not crs:
            node, (x, y) = outside
            upload.keep(f"node: node {node} is at ({x:g}, {y:g}), which is not a WGS84 "
                        "longitude/latitude: give the node file's crs (an EPSG code such as "
                        "EPSG:26916) to reproject it, or leave the node file out")
        return coordinates
    ids = list(coordinates)
    placed = reproject(np.array([coordinates[i] for i in ids], dtype=float))
    return {i: (float(x), float(y)) for i, (x, y) in zip(ids, placed.tolist(), strict=True)}


def _node_ids(links: list[Link], coordinates: dict[int, Coordinate], declared: int | None,
              upload: Upload) -> set[int]:
    if coordinates:
        return set(coordinates)
    if declared is None:
        return {n for link in links for n in (link.from_node, link.to_node)}
    if declared > upload.max_features:
        upload.keep(f"net: {declared} nodes: at most {upload.max_features} are accepted")
        return set()
    # As the model's reader: nodes above every link's end have no link; a few are harmless,
    # a count far beyond what the file holds is a typo.
    highest = max((max(link.from_node, link.to_node) for link in links), default=0)
    if declared > highest + len(links):
        upload.keep(f"net: <NUMBER OF NODES> {declared} but the links use node ids up to "
                    f"{highest}: at most {highest + len(links)} nodes are accepted")
        return set()
    return set(range(1, declared + 1))


def _trips(text: str, upload: Upload) -> tuple[int, dict[tuple[int, int], float]]:
    metadata, body = _sections(text)
    try:
        zones = integer(metadata.get("NUMBER OF ZONES", ""), "trips", "NUMBER OF ZONES")
    except Rejected as error:
        upload.keep(f"{error} (the <NUMBER OF ZONES> tag)")
        return 0, {}
    if zones > upload.max_features:
        upload.keep(f"trips: {zones} zones: at most {upload.max_features} are accepted")
        return 0, {}
    od: dict[tuple[int, int], float] = {}
    origin = 0
    before = len(upload.problems)
    for number_, line in body:
        where = f"trips line {number_}"
        try:
            origin = _trip_line(line.strip(), origin, zones, od, where)
        except Rejected as error:
            upload.keep(str(error))
    if len(upload.problems) == before:  # rejected rows already explain a different total
        _check_total(metadata, od, upload)
    return zones, od


def _trip_line(text: str, origin: int, zones: int, od: dict[tuple[int, int], float],
               where: str) -> int:
    if text.lower().startswith("origin"):
        words = text.split()
        return _zone(words[1] if len(words) > 1 else "", zones, where, "origin")
    if origin == 0:
        raise Rejected(f"{where}: destination values before any 'Origin' line")
    cells = TRIP_CELL.findall(text)
    if not cells or TRIP_CELL.sub("", text).strip():
        raise Rejected(f"{where}: expected 'destination : trips;' cells")
    for destination_text, value_text in cells:
        destination = _zone(destination_text, zones, where, "destination")
        value = number(value_text, where, f"trips {origin}->{destination}")
        if value < 0:
            raise Rejected(f"{where}: trips {origin}->{destination} is negative ({value})")
        od[origin, destination] = od.get((origin, destination), 0.0) + value
    return origin


def _zone(text: str, zones: int, where: str, column: str) -> int:
    zone = whole_number(text)
    if zone is None:
        raise Rejected(f"{where}: {column} zone {text.strip()[:40]!r} is not an integer")
    if not 1 <= zone <= zones:
        raise Rejected(f"{where}: {column} zone {zone} is not in 1..{zones}")
    return zone
