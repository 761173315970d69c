"""Demand matrices: OMX and CSV uploads in, OMX and CSV out, and the canonical claim-check blob.

A matrix holds one square table of trips per class over a list of zone ids. Its blob is
``cartolog.demand-matrix/1``: one JSON header line (zone ids ascending, class names sorted)
followed by each class's float64 little-endian table, so the same matrix always has the same
sha256 whatever file it came from.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import openmatrix as omx
import tables

from adapters.isolated import Bounds, IsolatedFailure, preload, run_isolated
from domain import rules
from domain.demand import MAX_CLASSES, DemandMatrixUpload
from domain.errors import InvalidCommand

preload(__name__)  # uploaded OMX files are read in a child process (read_omx)

MAGIC = b"cartolog.demand-matrix/1\n"
SELECT_LINK_MAGIC = b"cartolog.select-link/1\n"
DEFAULT_CLASS = "all"
MAPPING_NAMES = ("zone", "zones", "taz", "zone_id", "zone_ids")
MAX_PROBLEMS = 20
CSV_COLUMNS = ("origin", "destination", "trips")
# The most zones a file may name when the scenario's own zone count is not given: a table
# is zones x zones float64, allocated before the zones are matched (20 000 zones: 3.2 GB).
MAX_ZONES = 20_000
# Room in a matrix blob for its header: the magic and up to MAX_ZONES zone ids and the class
# names as JSON (about 0.3 MB at most).
_HEADER_ROOM = 1024 * 1024


def cells_within(blob_max_bytes: int) -> int:
    """The most cells (zones x zones x classes, float64) a matrix may hold so that its blob
    fits ``blob_max_bytes`` (CARTOLOG_BLOB_MAX_BYTES). Checked before any table is allocated:
    a parse's peak is about twice that many bytes, tables plus blob (decision 0707)."""
    return max(0, (blob_max_bytes - _HEADER_ROOM) // 8)


# The cap at the default blob limit of 256 MiB: 33.4 million cells (a parse peaks near 512 MB).
MAX_CELLS = cells_within(256 * 1024 * 1024)
# HDF5 node names PyTables refuses ('_c_', '_f_', '_g_', '_v_') or hides ('_i_', '_p_').
_RESERVED_OMX_PREFIX = rules.RESERVED_HDF5_PREFIX


class OmxNameError(ValueError):
    """Matrices whose names cannot be HDF5 node names: the matrix has no OMX form (its CSV
    form has no such limit). Names stored before the name rule can be such names."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, eq=False)
class DemandMatrix:
    """Trips per class, ``trips[name][i, j]`` from ``zone_ids[i]`` to ``zone_ids[j]``."""

    zone_ids: tuple[int, ...]
    trips: dict[str, np.ndarray]

    def canonical(self) -> DemandMatrix:
        """The same matrix with zone ids ascending and classes in name order."""
        order = np.argsort(np.array(self.zone_ids, dtype=np.int64), kind="stable")
        if np.array_equal(order, np.arange(len(order))):  # already ascending: no copy
            return DemandMatrix(self.zone_ids, {
                name: np.ascontiguousarray(self.trips[name], dtype="<f8")
                for name in sorted(self.trips)})
        tables_ = {name: np.ascontiguousarray(self.trips[name][np.ix_(order, order)],
                                              dtype="<f8") for name in sorted(self.trips)}
        return DemandMatrix(tuple(int(self.zone_ids[i]) for i in order), tables_)

    def to_blob(self) -> bytes:
        """The canonical claim-check bytes."""
        matrix = self.canonical()
        header = json.dumps({"zone_ids": list(matrix.zone_ids), "classes": list(matrix.trips)},
                            separators=(",", ":")).encode()
        # One copy of the tables: join reads each table's buffer (no tobytes() in between).
        return b"".join([MAGIC, header, b"\n",
                         *(t.reshape(-1).view(np.uint8).data for t in matrix.trips.values())])

    @classmethod
    def from_blob(cls, content: bytes) -> DemandMatrix:
        """Inverse of ``to_blob``."""
        if not content.startswith(MAGIC):
            raise ValueError("not a cartolog.demand-matrix/1 blob")
        header_end = content.index(b"\n", len(MAGIC))
        header = json.loads(content[len(MAGIC):header_end])
        size = len(header["zone_ids"])
        body = np.frombuffer(content, dtype="<f8", offset=header_end + 1)
        trips = {name: body[k * size * size:(k + 1) * size * size].reshape(size, size).copy()
                 for k, name in enumerate(header["classes"])}
        return cls(tuple(header["zone_ids"]), trips)

    def totals(self) -> dict[str, float]:
        """Total trips of each class."""
        return {name: float(table.sum()) for name, table in self.trips.items()}

    def aligned(self, zone_ids: tuple[int, ...], name: str | None = None) -> np.ndarray:
        """The trips (of one class, or of all summed) over ``zone_ids``; absent zones get 0."""
        position = {zone: i for i, zone in enumerate(zone_ids)}
        rows = np.array([position[z] for z in self.zone_ids], dtype=np.int64)
        chosen = [self.trips[name]] if name is not None else list(self.trips.values())
        result = np.zeros((len(zone_ids), len(zone_ids)))
        result[np.ix_(rows, rows)] = np.sum(chosen, axis=0)
        return result


def rejected(problems: list[str]) -> InvalidCommand:
    """The error of a matrix file that cannot be used (at most MAX_PROBLEMS listed)."""
    shown = problems[:MAX_PROBLEMS]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"and {len(problems) - MAX_PROBLEMS} more problem(s)")
    return InvalidCommand("the demand matrix was rejected; nothing was stored", shown)


def value_problems(matrix: DemandMatrix) -> list[str]:
    """Negative, non-finite or too large trips (over rules.MAX_MAGNITUDE, as every number
    Cartolog stores), per class, with the first place each occurs."""
    found: list[str] = []
    for name, table in matrix.trips.items():
        finite = np.isfinite(table)
        for label, bad in (("non-finite", ~finite), ("negative", finite & (table < 0)),
                           (f"over {rules.MAX_MAGNITUDE:g}",
                            finite & (table > rules.MAX_MAGNITUDE))):
            count = int(bad.sum())
            if count:
                i, j = (int(v) for v in np.argwhere(bad)[0])
                found.append(f"class {name!r}: {count} {label} value(s), first from zone "
                             f"{matrix.zone_ids[i]} to zone {matrix.zone_ids[j]}")
    return found


def checked(matrix: DemandMatrix) -> DemandMatrix:
    """The matrix if its values are all usable; InvalidCommand listing every problem."""
    problems = value_problems(matrix)
    if not matrix.trips:
        problems.append("the file holds no matrix")
    if problems:
        raise rejected(problems)
    return matrix.canonical()


# -- CSV ------------------------------------------------------------------------------------


def read_csv(content: bytes, max_zones: int = MAX_ZONES, max_cells: int = MAX_CELLS
             ) -> DemandMatrix:
    """``origin,destination,trips[,class]`` rows; every bad row is reported. A file naming
    more than `max_zones` zones, or more than `max_cells` cells, is refused before any table
    is allocated."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise rejected(["the CSV file is not UTF-8 text"]) from None
    delimiter = _delimiter(text)
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(rows, [])]
    if tuple(header[:3]) != CSV_COLUMNS or header[3:] not in ([], ["class"]):
        raise rejected(["the header must be origin,destination,trips[,class] (separated by "
                        "commas, semicolons or tabs), not "
                        f"{_shown_header(delimiter.join(header)) or 'empty'}"])
    try:
        entries, problems = _csv_entries(rows, len(header), decimal_comma=delimiter == ";")
    except csv.Error as error:  # e.g. a field over the csv module's 131072 characters
        raise rejected([f"line {rows.line_num}: {error}"]) from None
    if problems:
        raise rejected(problems)
    if not entries:
        raise rejected(["the CSV file has no rows"])
    classes = len({e[3] for e in entries})
    _check_class_count(classes)
    zones = len({e[0] for e in entries} | {e[1] for e in entries})
    _check_zone_count(zones, max_zones)
    _check_cell_count(zones, classes, max_cells)
    return checked(_from_entries(entries))


# What separates the columns: commas, or the semicolons (with decimal commas: '12,5') a
# spreadsheet writes in locales whose decimal mark is a comma, or tabs.
DELIMITERS = (",", ";", "\t")


def _delimiter(text: str) -> str:
    """The delimiter with which the first line reads origin, destination, trips (',' when
    none does: the header's refusal then shows it as it is)."""
    first = text.split("\n", 1)[0]
    return next((d for d in DELIMITERS
                 if tuple(h.strip().lower() for h in first.split(d)[:3]) == CSV_COLUMNS), ",")


def _shown_header(text: str) -> str:
    """A header as shown in a problem: at most 100 characters, tabs shown as '\\t'."""
    return text.replace("\t", "\\t")[:100]


def _check_class_count(count: int) -> None:
    """Refuse more classes than a scenario may declare, before any table is allocated."""
    if count > MAX_CLASSES:
        raise rejected([f"the file has {count} classes, at most {MAX_CLASSES} are allowed"])


def _check_zone_count(count: int, max_zones: int) -> None:
    """Refuse a matrix over more zones than allowed, before any table is allocated."""
    if count > max_zones:
        raise rejected([f"the file names {count} zones, at most {max_zones} are allowed "
                        "(no more than the scenario has)"])


def _check_cell_count(zones: int, classes: int, max_cells: int) -> None:
    """Refuse a matrix of more than `max_cells` cells (zones x zones x classes), before any
    table is allocated: each cell is 8 bytes in the API process."""
    cells = zones * zones * classes
    if cells > max_cells:
        raise rejected([f"the matrix would hold {zones} x {zones} zones x {classes} class(es) "
                        f"= {cells:,} cells, at most {max_cells:,} are allowed "
                        f"({max_cells * 8 // 1_000_000:,} MB of trips)"])


Entry = tuple[int, int, float, str]


def _csv_entries(rows: Iterator[list[str]], width: int, decimal_comma: bool = False
                 ) -> tuple[list[Entry], list[str]]:
    entries: list[Entry] = []
    problems: list[str] = []
    seen: set[tuple[int, int, str]] = set()
    for line, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        entry, problem = _csv_entry(row, width, decimal_comma)
        if entry is not None and (entry[0], entry[1], entry[3]) in seen:
            problem = f"origin {entry[0]}, destination {entry[1]} appears twice"
        if problem:
            problems.append(f"line {line}: {problem}")
        elif entry is not None:
            seen.add((entry[0], entry[1], entry[3]))
            entries.append(entry)
    return entries, problems


def _csv_entry(row: list[str], width: int, decimal_comma: bool = False
               ) -> tuple[Entry | None, str | None]:
    if len(row) != width:
        return None, f"expected {width} columns, found {len(row)}"
    origin, destination = rules.whole_number(row[0]), rules.whole_number(row[1])
    if origin is None or destination is None:
        return None, "origin and destination must be integer zone ids (ASCII digits)"
    problem = rules.integer_problem("a zone id", origin) or \
        rules.integer_problem("a zone id", destination)
    if problem:
        return None, problem
    written = row[2]
    if decimal_comma and written.count(",") == 1 and "." not in written:
        written = written.replace(",", ".")  # '12,5' in a semicolon-separated file
    trips = rules.decimal(written)
    if trips is None:  # float() would take '1_0', full-width digits, 'infinity', 'nan'
        return None, rules.decimal_problem("trips", row[2])
    if not math.isfinite(trips) or trips < 0:
        return None, f"trips must be a finite, non-negative number, not {row[2].strip()[:40]}"
    if trips > rules.MAX_MAGNITUDE:
        return None, f"trips must be at most {rules.MAX_MAGNITUDE:g}, not {row[2].strip()[:40]}"
    name = row[3].strip() if width == 4 else DEFAULT_CLASS
    return (origin, destination, trips, name or DEFAULT_CLASS), None


def _from_entries(entries: list[Entry]) -> DemandMatrix:
    zone_ids = tuple(sorted({e[0] for e in entries} | {e[1] for e in entries}))
    position = {zone: i for i, zone in enumerate(zone_ids)}
    trips: dict[str, np.ndarray] = {}
    for origin, destination, count, name in entries:
        if name not in trips:  # one table per class, never one per row
            trips[name] = np.zeros((len(zone_ids), len(zone_ids)))
        trips[name][position[origin], position[destination]] = count
    return DemandMatrix(zone_ids, trips)


def write_csv(matrix: DemandMatrix) -> Iterator[str]:
    """The non-zero cells as ``origin,destination,trips,class`` lines (header first)."""
    yield "origin,destination,trips,class\n"
    zone_ids = np.array(matrix.zone_ids, dtype=np.int64)
    for name, table in matrix.trips.items():
        for i in range(len(zone_ids)):
            row = table[i]
            yield "".join(f"{zone_ids[i]},{zone_ids[j]},{float(row[j])!r},{name}\n"
                          for j in np.nonzero(row)[0])


# -- OMX ------------------------------------------------------------------------------------


# What reading an uploaded OMX file may take in its own process (decisions 0709, 0710).
OMX_READ_BOUNDS = Bounds(memory_mb=4096, timeout_s=120.0)


def read_omx(content: bytes, max_zones: int = MAX_ZONES, max_cells: int = MAX_CELLS,
             bounds: Bounds | None = None) -> DemandMatrix:
    """Every matrix of an OMX file, one class each, zones from its zone mapping. Declared
    shapes are checked against the mapping, `max_zones` and `max_cells` before any dataset
    is read.

    The file is read in a process of its own (adapters.isolated, decision 0709): the HDF5
    library can crash (SIGSEGV) or hang on a corrupt file, and the process that reads uploads
    is the API, which serves every tenant. A crash, or a read past its `bounds` (default
    OMX_READ_BOUNDS) of time or memory, is that file's 422."""
    try:
        return run_isolated(
            _read_omx_here, (content, max_zones, max_cells), bounds or OMX_READ_BOUNDS,
            what="the OMX file", reader="the HDF5 library", expected=(InvalidCommand,))
    except IsolatedFailure as failure:
        raise rejected([str(failure)]) from None


def _read_omx_here(content: bytes, max_zones: int, max_cells: int) -> DemandMatrix:
    try:
        handle = omx.open_file("upload.omx", "r", driver="H5FD_CORE",
                               driver_core_image=content, driver_core_backing_store=0)
    except (tables.HDF5ExtError, OSError, ValueError):
        raise rejected(["the file is not an OMX (HDF5) file"]) from None
    try:
        return checked(_omx_matrix(handle, max_zones, max_cells))
    except (tables.HDF5ExtError, tables.NoSuchNodeError, KeyError, TypeError) as error:
        raise rejected([f"the OMX file is malformed: {type(error).__name__}: {error}"]) from None
    finally:
        handle.close()


def _omx_matrix(handle: Any, max_zones: int, max_cells: int) -> DemandMatrix:
    names = [str(n) for n in handle.list_matrices()]
    _check_class_count(len(names))
    zone_ids, problems = _omx_zones(handle, max_zones)
    if problems and not zone_ids:  # no usable mapping: shapes cannot be judged
        raise rejected(problems)
    _check_cell_count(len(zone_ids), len(names), max_cells)
    size = (len(zone_ids), len(zone_ids))
    for name in names:
        shape, dtype = tuple(handle[name].shape), np.dtype(handle[name].dtype)
        if shape != size:
            problems.append(f"matrix {name!r} is {_shape(shape)}, the zone mapping has "
                            f"{len(zone_ids)} zones")
        if dtype.kind not in "biuf":
            problems.append(f"matrix {name!r} must hold numbers, not {dtype}")
    if problems:
        raise rejected(problems)
    # Only now, every declared shape known to be zones x zones, is any table read.
    trips = {name: np.asarray(handle[name][:], dtype=np.float64) for name in names}
    return DemandMatrix(zone_ids, trips)


def _omx_zones(handle: Any, max_zones: int) -> tuple[tuple[int, ...], list[str]]:
    mappings = [str(m) for m in handle.list_mappings()]
    if not mappings:
        return (), ["the OMX file has no zone mapping (zones are matched by id)"]
    chosen = next((m for m in mappings if m.lower() in MAPPING_NAMES), mappings[0])
    node = handle.get_node(handle.root.lookup, chosen)
    if not isinstance(node, tables.Leaf) or len(node.shape) != 1:
        return (), [f"zone mapping {chosen!r} must be a list of zone ids"]
    _check_zone_count(int(node.shape[0]), max_zones)
    ids = np.asarray(node[:])
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.number) or \
            not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
        return (), [f"zone mapping {chosen!r} must hold integer zone ids"]
    if ids.size and not (ids.min() >= 1 and ids.max() <= rules.MAX_INTEGER):
        return (), [f"zone mapping {chosen!r} must hold zone ids from 1 to {rules.MAX_INTEGER}"]
    zone_ids = tuple(int(z) for z in ids)
    if len(set(zone_ids)) != len(zone_ids):
        return zone_ids, [f"zone mapping {chosen!r} names a zone twice"]
    return zone_ids, []


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def omx_name_problem(name: str) -> str | None:
    """Why `name` cannot name a matrix in an OMX (HDF5) file (None when it can)."""
    if name in ("", "."):
        return f"{name!r} cannot be an OMX matrix name (HDF5 forbids it)"
    if "/" in name or "\x00" in name:
        return f"{name!r} cannot be an OMX matrix name (HDF5 names hold no '/' or NUL)"
    if _RESERVED_OMX_PREFIX.match(name):
        return (f"{name!r} cannot be an OMX matrix name (PyTables reserves names starting "
                f"with {name[:3]!r})")
    return None


def write_omx(matrix: DemandMatrix, mapping: str = "zone") -> bytes:
    """An OMX file holding one matrix per class and the zone ids as mapping ``mapping``.
    OmxNameError, before anything is written, when a matrix name cannot be an HDF5 name."""
    problems = [p for p in map(omx_name_problem, matrix.trips) if p]
    if problems:
        raise OmxNameError(problems)
    descriptor, path = tempfile.mkstemp(prefix="cartolog-", suffix=".omx")
    os.close(descriptor)
    try:
        handle = omx.open_file(path, "w")
        try:
            for name, table in matrix.trips.items():
                handle[name] = np.asarray(table, dtype=np.float64)
            handle.create_mapping(mapping, np.array(matrix.zone_ids, dtype=np.int64))
        finally:
            handle.close()
        with open(path, "rb") as written:
            return written.read()
    finally:
        os.unlink(path)


def read(content: bytes, file_format: str, max_zones: int = MAX_ZONES,
         max_cells: int = MAX_CELLS, bounds: Bounds | None = None) -> DemandMatrix:
    """Parse an upload in ``omx`` or ``csv`` format over at most `max_zones` zones and
    `max_cells` cells (an OMX file within `bounds`, read_omx)."""
    if file_format == "omx":
        return read_omx(content, max_zones, max_cells, bounds)
    if file_format == "csv":
        return read_csv(content, max_zones, max_cells)
    raise rejected([f"format must be omx or csv, not {file_format!r}"])


def upload(content: bytes, file_format: str, max_zones: int = MAX_ZONES,
           max_cells: int | None = None, bounds: Bounds | None = None) -> DemandMatrixUpload:
    """Parse a file into what the domain command checks and stores; `max_zones` is the
    scenario's zone count (a matrix over more zones cannot fit it), `max_cells` what the blob
    limit holds (``cells_within``; default MAX_CELLS), `bounds` what reading an OMX file may
    take (default OMX_READ_BOUNDS)."""
    cells = MAX_CELLS if max_cells is None else max_cells
    matrix = read(content, file_format, min(max_zones, MAX_ZONES), cells, bounds)
    return DemandMatrixUpload(matrix.zone_ids, matrix.totals(), matrix.to_blob(), file_format)


def read_select_link(content: bytes) -> tuple[dict[str, Any], DemandMatrix]:
    """A ``cartolog.select-link/1`` blob: its JSON header (name, mode, links, link flows per
    class) and the OD matrix of the selected demand per class."""
    if not content.startswith(SELECT_LINK_MAGIC):
        raise ValueError("not a cartolog.select-link/1 blob")
    header_end = content.index(b"\n", len(SELECT_LINK_MAGIC))
    header = json.loads(content[len(SELECT_LINK_MAGIC):header_end])
    return header, DemandMatrix.from_blob(content[header_end + 1:])
