"""Reader for the TNTP formats (github.com/bstabler/TransportationNetworks).

``_net`` (links), ``_trips`` (OD matrix), ``_node`` (coordinates, optional) and ``_flow`` (a
published solution, optional). Every parse error names the file and line.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulation_worker.model.errors import (
    MalformedRowError,
    MissingFileError,
    NegativeDemandError,
    NonFiniteValueError,
    UnknownNodeError,
    UnknownZoneError,
)
from simulation_worker.model.network import (
    DEFAULT_ASSIGNMENT,
    DEFAULT_COSTS,
    AssignmentSettings,
    CostParameters,
    ExplicitDemand,
    FloatArray,
    ModelInput,
    Network,
    Zone,
    validate_network,
)

_META = re.compile(r"^\s*<([^>]+)>\s*(.*)$")
_TRIP_CELL = re.compile(r"(\S+)\s*:\s*([^;\s]+)\s*;?")
# The whole-text reader's plainly valid origin lines and cells (ASCII digits only: ``\d`` would
# take other scripts' digits, which the row-by-row reader handles).
_ORIGIN_LINE = re.compile(r"^[ \t]*origin[ \t]+([0-9]{1,10})[ \t]*$", re.IGNORECASE | re.MULTILINE)
_PLAIN_CELLS = re.compile(
    r"[0-9]{1,10}[ \t]*:[ \t]*(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*;?")


@dataclass(frozen=True, eq=False)
class TntpCase:
    """A TNTP network folder: the network, its zones, OD trips and (if shipped) published flows."""

    name: str
    network: Network
    zones: tuple[Zone, ...]
    trips: FloatArray
    published_flows: FloatArray | None

    def model_input(
        self,
        costs: CostParameters = DEFAULT_COSTS,
        assignment: AssignmentSettings = DEFAULT_ASSIGNMENT,
    ) -> ModelInput:
        """The model input for an assignment of this case's OD matrix."""
        return ModelInput(
            network=self.network,
            zones=self.zones,
            demand=ExplicitDemand(self.trips),
            costs=costs,
            assignment=assignment,
        )


def load_tntp_folder(folder: Path | str) -> TntpCase:
    """Load a folder holding one ``*_net.tntp``, one ``*_trips.tntp`` and optional node/flow."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: not a directory")
    net_file = _one_file(folder, "net", required=True)
    trips_file = _one_file(folder, "trips", required=True)
    node_file = _one_file(folder, "node", required=False)
    flow_file = _one_file(folder, "flow", required=False)
    assert net_file is not None and trips_file is not None
    network = read_net(net_file, node_file)
    n_zones, trips = read_trips(trips_file, centroids=network.n_nodes)
    zones = _zones_from_trips(network, n_zones, trips, trips_file)
    flows = read_flow(flow_file, network) if flow_file is not None else None
    name = net_file.name[:net_file.name.lower().rindex("_net.tntp")]
    return TntpCase(name, network, zones, trips, flows)


def _one_file(folder: Path, kind: str, *, required: bool) -> Path | None:
    """The folder's ``*_{kind}.tntp`` file, or its gzipped ``*_{kind}.tntp.gz``, in any case
    (``Birmingham_Net.tntp``); the node file may also be ``*_nodes.tntp``."""
    kinds = ("node", "nodes") if kind == "node" else (kind,)
    endings = tuple(f"_{k}.tntp{gz}" for k in kinds for gz in ("", ".gz"))
    found = sorted(p for p in folder.iterdir() if p.name.lower().endswith(endings))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise MissingFileError(f"{folder}: more than one *_{kind}.tntp[.gz] ({names})")
    if not found and required:
        raise MissingFileError(f"{folder}: no *_{kind}.tntp or *_{kind}.tntp.gz file")
    return found[0] if found else None


def _lines(path: Path) -> list[str]:
    """A TNTP file's lines, gunzipped if its name ends in ``.gz``."""
    if path.suffix != ".gz":
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise MissingFileError(f"{path.name}: not a readable gzip file ({error})") from None
    return data.decode("utf-8", errors="replace").splitlines()


def _read_sections(path: Path) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """Metadata (tags before <END OF METADATA>) and the numbered body lines after it."""
    return _sections(_lines(path))


def _sections(lines: list[str]) -> tuple[dict[str, str], list[tuple[int, str]]]:
    metadata: dict[str, str] = {}
    first = 0  # index of the first body line
    if any("<END OF METADATA>" in line for line in lines):
        first = len(lines)
        for index, line in enumerate(lines):
            match = _META.match(line)
            if match and match.group(1) == "END OF METADATA":
                first = index + 1
                break
            if match:
                metadata[match.group(1).strip()] = match.group(2).strip()
    body = [(number, line) for number, line in enumerate(lines[first:], start=first + 1)
            if line.strip() and not line.lstrip().startswith("~")]
    return metadata, body


def extra_positions(lines: list[str]) -> tuple[int | None, int | None, int | None]:
    """Where a ``_net`` file's rows hold speed, toll and link type: fields 8, 9 and 10, unless
    its ``~ init_node term_node ...`` header names other columns there. Sydney's and Gold
    Coast's read ``speed critical_speed lanes``: their speed is read, and their toll and link
    type take the defaults (0, 1) rather than the critical speed and the lane count. A field
    the header names otherwise, or beyond the tenth, is not read (None)."""
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith("~"):
            names = stripped[1:].replace(";", " ").lower().split()
            if names[:2] != ["init_node", "term_node"]:
                return _STANDARD_EXTRAS
            extras = names[len(_NET_COLUMNS):len(_NET_COLUMNS) + 3]
            if extras == ["speed", "toll", "link_type"][:len(extras)]:
                return _STANDARD_EXTRAS  # the standard layout, or a prefix of it
            found = {_EXTRA_NAMES.get(name): len(_NET_COLUMNS) + i
                     for i, name in reversed(list(enumerate(extras)))}
            speed, toll, kind = (found.get(column) for column in _EXTRA_COLUMNS)
            return speed, toll, kind
    return _STANDARD_EXTRAS


def _number(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MalformedRowError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise NonFiniteValueError(f"{where}: {column} is {text}")
    return value


def _node_id(text: str, where: str, column: str) -> int:
    return _integer(text, where, column, 1, "a node id")


def _integer(text: str, where: str, column: str, low: int, what: str = "an integer") -> int:
    """An integer in ``low..MAX_INTEGER`` (the dataset importer's bounds, so a file that one
    refuses the other refuses too)."""
    value = _number(text, where, column)
    if value != int(value) or not low <= value <= MAX_INTEGER:
        raise MalformedRowError(f"{where}: {column} {text!r} is not {what} in "
                                f"{low}..{MAX_INTEGER}")
    return int(value)


# Node ids, link types and zone counts are at most this, as in the dataset importer.
MAX_INTEGER = 2**31 - 1


_NET_COLUMNS = ("init_node", "term_node", "capacity", "length", "free_flow_time", "b", "power")
_EXTRA_COLUMNS = ("speed", "toll", "type")
# Speed, toll and link type where a row stops before them.
_EXTRA_DEFAULTS = (0.0, 0.0, 1.0)
_STANDARD_EXTRAS: tuple[int | None, int | None, int | None] = (7, 8, 9)
_EXTRA_NAMES = {"speed": "speed", "toll": "toll", "link_type": "type", "type": "type"}


def read_net(path: Path, node_file: Path | None = None) -> Network:
    """Parse a ``_net`` file (and optional ``_node`` file) into a validated ``Network``."""
    lines = _lines(path)
    metadata, body = _sections(lines)
    positions = extra_positions(lines)
    columns = _net_columns_at_once(body, positions)
    if columns is None:  # row by row, to name the first bad row
        rows = [_parse_net_row(path, number, line, positions) for number, line in body]
        if not rows:
            raise MalformedRowError(f"{path.name}: no links")
        columns = np.array([r[1] for r in rows], dtype=np.float64)
    if "NUMBER OF LINKS" in metadata:  # as the API's importer (api/tntp_import.py)
        declared = _integer(metadata["NUMBER OF LINKS"], path.name, "NUMBER OF LINKS", 0)
        if declared != len(columns):
            raise MalformedRowError(
                f"{path.name}: <NUMBER OF LINKS> {declared} but the file holds {len(columns)} "
                "link rows: is it cut short? (correct the tag if rows were added or removed)")
    node_ids, node_x, node_y = _nodes(metadata, node_file, columns, path.name)
    first_thru = _integer(metadata.get("FIRST THRU NODE", "1"), path.name, "FIRST THRU NODE", 1)
    name = path.name
    m = len(columns)
    network = Network(
        node_ids=node_ids,
        node_x=node_x,
        node_y=node_y,
        link_ids=np.arange(1, m + 1, dtype=np.int64),
        link_from=columns[:, 0].astype(np.int64),
        link_to=columns[:, 1].astype(np.int64),
        capacity=columns[:, 2].copy(),
        length=columns[:, 3].copy(),
        free_flow_time=columns[:, 4].copy(),
        bpr_b=columns[:, 5].copy(),
        bpr_power=columns[:, 6].copy(),
        speed_limit=columns[:, 7].copy(),
        toll=columns[:, 8].copy(),
        lanes=np.ones(m),
        link_type=columns[:, 9].astype(np.int64),
        link_open=np.ones(m, dtype=np.bool_),
        first_thru_node=first_thru,
        link_rows=tuple(f"{name} line {number}" for number, _ in body),
    )
    validate_network(network)
    return network


def _net_columns_at_once(
    body: list[tuple[int, str]],
    positions: tuple[int | None, int | None, int | None] = _STANDARD_EXTRAS,
) -> FloatArray | None:
    """All link rows as one array (node ids, five link columns, speed, toll, type), or None
    when any row is not plainly valid: every row with the same number of fields (7 to 10 are
    read), every value a finite number, node ids and link types integers. The row-by-row
    parser then names the first bad row. A city's 28,000 rows take a fifth of the row-by-row
    time. ``positions`` are the fields holding speed, toll and type (``extra_positions``)."""
    if not body:
        return None
    split = [line.replace(";", " ").split()[:10] for _, line in body]
    width = len(split[0])
    if width < len(_NET_COLUMNS) or any(len(fields) != width for fields in split):
        return None
    try:
        values = np.array(split, dtype=np.float64)
    except ValueError:
        return None
    if not np.isfinite(values).all():
        return None
    kind = positions[2]
    integers = values[:, [0, 1, kind]] if kind is not None and kind < width else values[:, :2]
    lowest = np.array([1, 1, 0][:integers.shape[1]])
    if ((integers != np.trunc(integers)).any() or (integers < lowest).any()
            or (integers > MAX_INTEGER).any()):
        return None
    columns = np.empty((len(split), 10))
    columns[:, :7] = values[:, :7]
    for j, (position, default) in enumerate(zip(positions, _EXTRA_DEFAULTS, strict=True)):
        present = position is not None and position < width
        columns[:, 7 + j] = values[:, position] if present else default
    return columns


def _parse_net_row(
    path: Path, number: int, line: str,
    positions: tuple[int | None, int | None, int | None] = _STANDARD_EXTRAS,
) -> tuple[int, list[float]]:
    where = f"{path.name} line {number}"
    fields = line.replace(";", " ").split()
    if len(fields) < len(_NET_COLUMNS):
        raise MalformedRowError(
            f"{where}: expected at least {len(_NET_COLUMNS)} fields, found {len(fields)}"
        )
    ends = [float(_node_id(fields[i], where, _NET_COLUMNS[i])) for i in (0, 1)]
    values = [_number(fields[i], where, _NET_COLUMNS[i]) for i in range(2, 7)]
    for extra in range(7, min(len(fields), 10)):  # every read field is a number
        if extra not in positions:
            _number(fields[extra], where, f"field {extra + 1}")
    extras = []
    for column, position, default in zip(_EXTRA_COLUMNS, positions, _EXTRA_DEFAULTS,
                                         strict=True):
        if position is None or position >= len(fields):
            extras.append(default)
        elif column == "type":
            extras.append(float(_integer(fields[position], where, column, 0)))
        else:
            extras.append(_number(fields[position], where, column))
    return number, ends + values + extras


def _nodes(
    metadata: dict[str, str], node_file: Path | None, columns: FloatArray, name: str
) -> tuple[np.ndarray, FloatArray, FloatArray]:
    if node_file is not None:
        return read_node(node_file)
    declared = metadata.get("NUMBER OF NODES")
    if declared is not None:
        count = _integer(declared, name, "NUMBER OF NODES", 1)
        # Nodes 1..count; those above every link's ends have no link. A few are harmless, but
        # a count far beyond what the file holds is a typo that would only exhaust memory.
        highest = int(columns[:, :2].max())
        if count > highest + len(columns):
            raise MalformedRowError(
                f"{name}: <NUMBER OF NODES> {declared} but the links use node ids up to "
                f"{highest}: at most {highest + len(columns)} nodes are accepted")
        ids = np.arange(1, count + 1, dtype=np.int64)
    else:
        ids = np.unique(columns[:, :2].astype(np.int64))
    return ids, np.full(len(ids), np.nan), np.full(len(ids), np.nan)


def read_node(path: Path) -> tuple[np.ndarray, FloatArray, FloatArray]:
    """Parse a ``_node`` file: node id, x, y per row (header row skipped)."""
    ids: list[int] = []
    xs: list[float] = []
    ys: list[float] = []
    lines = _lines(path)
    for number, line in enumerate(lines, start=1):
        fields = line.replace(";", " ").split()
        if not fields or (number == 1 and not fields[0].lstrip("-").isdigit()):
            continue
        where = f"{path.name} line {number}"
        if len(fields) < 3:
            raise MalformedRowError(f"{where}: expected node, x, y")
        ids.append(_node_id(fields[0], where, "node"))
        xs.append(_number(fields[1], where, "x"))
        ys.append(_number(fields[2], where, "y"))
    return np.array(ids, dtype=np.int64), np.array(xs), np.array(ys)


def read_trips(path: Path, centroids: int | None = None) -> tuple[int, FloatArray]:
    """Parse a ``_trips`` file into (number of zones, dense OD matrix). Zones are nodes
    ``1..n``: with ``centroids`` (the network's node count), more zones are refused before
    the matrix is allocated."""
    metadata, body = _read_sections(path)
    if "NUMBER OF ZONES" not in metadata:
        raise MalformedRowError(f"{path.name}: no <NUMBER OF ZONES> tag")
    n = _integer(metadata["NUMBER OF ZONES"], path.name, "NUMBER OF ZONES", 1)
    if centroids is not None and n > centroids:
        raise UnknownNodeError(f"{path.name}: <NUMBER OF ZONES> {n}, but the network has "
                               f"{centroids} nodes: zone {centroids + 1} has no centroid node")
    at_once = _trips_at_once(body, n)
    if at_once is not None:
        return n, _checked_total(metadata, at_once, path.name)
    trips = np.zeros((n, n))  # row by row, to name the first bad row
    origin = 0
    for number, line in body:
        where = f"{path.name} line {number}"
        stripped = line.strip()
        if stripped.lower().startswith("origin"):
            origin = _zone_number(stripped.split()[1] if len(stripped.split()) > 1 else "", n,
                                  where, "origin")
            continue
        if origin == 0:
            raise MalformedRowError(f"{where}: destination values before any 'Origin' line")
        _parse_trip_cells(stripped, trips, origin, n, where)
    return n, _checked_total(metadata, trips, path.name)


# As the API's importer: <TOTAL OD FLOW> is printed to six significant digits or more.
TOTAL_TOLERANCE = 1e-4


def _checked_total(metadata: dict[str, str], trips: FloatArray, name: str) -> FloatArray:
    """``trips``, once their sum agrees with the <TOTAL OD FLOW> tag (when there is one)."""
    text = metadata.get("TOTAL OD FLOW", "").split()
    if not text:
        return trips
    declared = _number(text[0], name, "TOTAL OD FLOW")
    total = float(trips.sum())
    if abs(total - declared) > TOTAL_TOLERANCE * max(abs(declared), 1.0):
        raise MalformedRowError(
            f"{name}: <TOTAL OD FLOW> {declared:.10g} but the trips add up to {total:.10g}: is "
            "the file cut short? (correct the tag if it was edited)")
    return trips


def _trips_at_once(body: list[tuple[int, str]], n: int) -> FloatArray | None:
    """The OD matrix with its numbers converted at once, or None when anything is not plainly
    valid (the row-by-row reader then names the first bad row or reads what only it accepts).

    Plainly valid: every line is an ``Origin k`` line (k in 1..n) or holds only cells
    ``destination : trips;`` (the ``;`` optional), the destination 1-10 ASCII digits in 1..n
    and the trips an unsigned decimal number, finite. The whole text is checked and split a
    block per origin, by regular expressions and ``str.split``, not a line at a time: Sydney's
    7.3 million cells take about 5 s rather than 19 s."""
    text = "\n".join(line for _, line in body)
    parts = _ORIGIN_LINE.split(text)  # [before the first origin, origin, block, origin, ...]
    if parts[0].strip():
        return None
    origins = np.array(parts[1::2], dtype=np.int64)
    if ((origins < 1) | (origins > n)).any():
        return None
    tokens: list[str] = []
    cells = np.zeros(len(origins), dtype=np.int64)
    for k, block in enumerate(parts[2::2]):
        rest, count = _PLAIN_CELLS.subn("", block)
        if rest.strip():  # anything but cells, or a cell split over two lines
            return None
        tokens.extend(block.replace(":", " ").replace(";", " ").split())
        cells[k] = count
    numbers = np.array(tokens, dtype=np.float64)  # destination, trips, destination, ...
    dest, value = numbers[0::2].astype(np.int64), numbers[1::2]
    if ((dest < 1) | (dest > n)).any() or not np.isfinite(value).all():
        return None
    cell = np.repeat(origins - 1, cells) * n + (dest - 1)  # repeated cells add up
    summed = np.bincount(cell, weights=value, minlength=n * n)
    return np.asarray(summed, dtype=np.float64).reshape(n, n)


def _parse_trip_cells(text: str, trips: FloatArray, origin: int, n: int, where: str) -> None:
    cells = _TRIP_CELL.findall(text)
    if not cells or _TRIP_CELL.sub("", text).strip():
        raise MalformedRowError(f"{where}: expected 'destination : trips;' cells")
    for dest_text, value_text in cells:
        dest = _zone_number(dest_text, n, where, "destination")
        value = _number(value_text, where, f"trips {origin}->{dest}")
        if value < 0:
            raise NegativeDemandError(f"{where}: trips {origin}->{dest} is negative ({value})")
        trips[origin - 1, dest - 1] += value


def _zone_number(text: str, n: int, where: str, column: str) -> int:
    try:
        zone = int(text)
    except ValueError:
        raise MalformedRowError(f"{where}: {column} zone {text!r} is not an integer") from None
    if not 1 <= zone <= n:
        raise UnknownZoneError(f"{where}: {column} zone {zone} is not in 1..{n}")
    return zone


def _zones_from_trips(
    network: Network, n_zones: int, trips: FloatArray, trips_file: Path
) -> tuple[Zone, ...]:
    known = set(network.node_ids.tolist())
    missing = [z for z in range(1, n_zones + 1) if z not in known]
    if missing:
        raise UnknownNodeError(
            f"{trips_file.name}: zone {missing[0]} has no centroid node in the network"
        )
    productions = trips.sum(axis=1)
    attractions = trips.sum(axis=0)
    return tuple(
        Zone(id=z, centroid=z, population=float(productions[z - 1]),
             jobs=float(attractions[z - 1]))
        for z in range(1, n_zones + 1)
    )


def read_flow(path: Path, network: Network) -> FloatArray:
    """Parse a ``_flow`` file into flows aligned with the network's links (matched by ends)."""
    index = {
        (int(a), int(b)): i
        for i, (a, b) in enumerate(zip(network.link_from, network.link_to, strict=True))
    }
    flows = np.zeros(network.n_links)
    lines = _lines(path)
    for number, line in enumerate(lines, start=1):
        fields = line.replace(";", " ").split()
        if not fields or not fields[0].lstrip("-").isdigit():
            continue
        where = f"{path.name} line {number}"
        if len(fields) < 3:
            raise MalformedRowError(f"{where}: expected from, to, volume")
        key = (_node_id(fields[0], where, "from"), _node_id(fields[1], where, "to"))
        if key not in index:
            raise UnknownNodeError(f"{where}: no link {key[0]}->{key[1]} in the network")
        flows[index[key]] = _number(fields[2], where, "volume")
    return flows
