"""The rules every value must satisfy to enter Cartolog, whichever door it comes through.

Dataset imports (GeoJSON, TNTP), scenario edits, simulation parameters, names and the CLI
all check their input here, so no door accepts what another refuses. Each function returns
the broken rules as sentences (empty when there are none): callers collect every one of
them before refusing a command. The limits are documented in docs/validation.md; they keep
every accepted value storable in the read model (PostgreSQL text cannot hold NUL, its
`integer` columns hold 32-bit numbers, JSONB refuses NaN).

These rules apply to commands only. Events already stored are replayed as they are, even
when they break a rule added later (decision 0010).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

MAX_NAME = 200
MAX_ID = 100
MAX_TEXT = 2000
MAX_INTEGER = 2**31 - 1
MAX_MAGNITUDE = 1e12
MAX_POSITIONS = 10_000
MAX_PARAMETERS = 50
MAX_PARAMETER_DEPTH = 4
MAX_PARAMETER_ITEMS = 100
MAX_PARAMETER_TEXT = 1000
MAX_JSON_INTEGER = 2**53
BUILTIN_ALGORITHMS = ("b", "bfw", "fw")
UNPRINTABLE = frozenset({"Cc", "Cs", "Co", "Cn"})
# Format characters (category Cf) are invisible: a zero-width space makes a blank name look
# filled, a right-to-left override makes "gpkg.exe" read "exe.gkpg". Only the joiners that
# Persian, Indic scripts and emoji sequences need are allowed.
JOINERS = frozenset("\u200c\u200d")
LINE_BREAKS = frozenset("\n\r\t")
MAX_COMMENT = 10_000
MAX_KEY_NAME = 64
KEY_NAME_PUNCTUATION = frozenset("_- ")
# names PyTables keeps for itself inside an HDF5 group: an OMX file cannot hold a matrix so named
RESERVED_HDF5_PREFIX = re.compile("^_[cfgvip]_")
# The largest stored event a command may append. The relay publishes each event as one
# Kafka record, and the producer refuses a request over 4 MiB (adapters/kafka.py); an
# event it cannot publish would stall the relay for every tenant, so the store refuses it.
MAX_EVENT_BYTES = 1024 * 1024
# A number as CSV files and spreadsheets write it: ASCII digits with an optional sign, point
# and exponent. Python's float() and int() also read '1_000', any script's digits
# (full-width, Arabic-Indic ...), 'infinity', 'nan' and Unicode spaces around them: none of
# those is a number in a file, and each door reading numbers from text uses `decimal` or
# `whole_number`.
DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,30}")
_BLANKS = " \t"


def text_problem(what: str, text: object, longest: int = MAX_TEXT,
                 allow_empty: bool = False, multiline: bool = False) -> str | None:
    """Why `text` cannot be stored as text (None when it can): not a string, too long,
    blank, or holding control characters (NUL among them) or unpaired surrogates.
    Multi-line text (a comment) may also hold line breaks and tabs."""
    if not isinstance(text, str):
        return f"{what} must be text"
    if len(text) > longest or (not allow_empty and not text.strip()):
        return f"{what} must be {0 if allow_empty else 1} to {longest} characters"
    allowed = LINE_BREAKS if multiline else frozenset()
    if any(unicodedata.category(ch) in UNPRINTABLE and ch not in allowed for ch in text):
        if multiline:
            return f"{what} must not contain control characters other than line breaks and tabs"
        return f"{what} must not contain control characters (NUL, tab, newline ...)"
    formats = {ch for ch in text if unicodedata.category(ch) == "Cf"} - JOINERS
    if formats:
        return (f"{what} must not contain invisible format characters (found "
                f"{', '.join(sorted(f'U+{ord(ch):04X}' for ch in formats)[:5])}: zero-width "
                "spaces, direction overrides, soft hyphens ...)")
    if not allow_empty and all(ch.isspace() or ch in JOINERS for ch in text):
        return f"{what} must hold a visible character"
    return None


def label_problem(kind: str, text: str, longest: int = MAX_NAME) -> str | None:
    """Why `text` cannot be a human-readable name (None when it can)."""
    return text_problem(f"a {kind} name", text, longest)


def key_name_problem(what: str, name: object) -> str | None:
    """Why `name` cannot name a vehicle class or a select-link selection: such a name is
    also an HDF5 node name (OMX downloads) and a URL path segment, so it holds only letters,
    digits, '_', '-' and inner spaces, 1 to MAX_KEY_NAME characters ('/', '.', '..' never),
    and does not start with a prefix PyTables reserves ('_v_', '_c_', ...)."""
    problem = text_problem(what, name, MAX_KEY_NAME)
    if problem or not isinstance(name, str):
        return problem
    if name != name.strip():
        return f"{what} must not start or end with a space"
    if not all(ch.isalnum() or ch in KEY_NAME_PUNCTUATION for ch in name):
        return (f"{what} {name[:MAX_KEY_NAME]!r} may hold only letters, digits, '_', '-' and "
                "inner spaces")
    if RESERVED_HDF5_PREFIX.match(name + "_"):  # '_v' too: its skims would be '_v_time'
        return (f"{what} {name!r} must not start with {(name + '_')[:3]!r}: OMX files (HDF5) "
                "reserve that prefix")
    return None


def url_problem(what: str, url: object) -> str | None:
    """Why `url` cannot be the address of an HTTP service Cartolog calls (None when it can):
    text by the rules above, an absolute `http` or `https` URL with a host name and a valid
    port. Whether its host may be called (it resolves to public addresses only) is the
    caller's policy (adapters/bi_connectors.py)."""
    problem = text_problem(what, url)
    if problem or not isinstance(url, str):
        return problem
    if url != url.strip() or any(ch.isspace() for ch in url):
        return f"{what} must not contain spaces"
    try:
        parts = urlsplit(url)
        port = parts.port  # a port that is not a number 0..65535 raises here
    except ValueError:
        return f"{what} is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return f"{what} must be an http:// or https:// URL"
    if not parts.hostname:
        return f"{what} must name a host"
    if port == 0:
        return f"{what} must not use port 0"
    return None


def id_problem(what: str, text: object) -> str | None:
    """Why `text` cannot be an identifier: names' rules, at most MAX_ID characters, and no
    space at either end (ids are compared exactly)."""
    problem = text_problem(what, text, MAX_ID)
    if problem is None and isinstance(text, str) and text != text.strip():
        return f"{what} must not start or end with a space"
    return problem


def number_problem(what: str, value: object, minimum: float = 0.0,
                   positive: bool = False) -> str | None:
    """Why `value` is not a finite number within [minimum, MAX_MAGNITUDE] (positive: > 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{what} must be a number"
    kind = "positive" if positive else "non-negative" if minimum == 0 else f">= {minimum:g}"
    if not math.isfinite(value) or value < minimum or (positive and value <= 0):
        return f"{what} must be a finite, {kind} number (not NaN or Infinity)"
    if abs(value) > MAX_MAGNITUDE:
        return f"{what} must be at most {MAX_MAGNITUDE:g} in magnitude"
    return None


def decimal(text: str) -> float | None:
    """The number `text` writes in plain decimal notation (spaces or tabs around it allowed),
    None when it is not one. Text that overflows a float ('1e999') reads as infinity: the
    caller's finite-number rule refuses it, as it refuses any out-of-range value."""
    stripped = text.strip(_BLANKS)
    return float(stripped) if DECIMAL_TEXT.fullmatch(stripped) else None


def whole_number(text: str) -> int | None:
    """The integer `text` writes in ASCII digits (sign and spaces around allowed; no point,
    exponent or '_'), None when it is not one (more than 30 digits is not one either)."""
    stripped = text.strip(_BLANKS)
    return int(stripped) if INTEGER_TEXT.fullmatch(stripped) else None


def decimal_problem(what: str, text: str) -> str:
    """Why `text`, which `decimal` refused, is not a number: Python-only syntax ('1_0', other
    scripts' digits) and 'nan' or 'infinity' are each named, anything else is not a number."""
    shown = text.strip()[:40]
    try:
        value = float(text)
    except (ValueError, OverflowError):
        return f"{what} {shown!r} is not a number"
    if not math.isfinite(value):
        return f"{what} must be a finite number, not {shown}"
    return (f"{what} {shown!r} is not a plain decimal number (digits 0-9, an optional sign, "
            "point and exponent; no '_' or other digits)")


def integer_problem(what: str, value: object, low: int = 1, high: int = MAX_INTEGER
                    ) -> str | None:
    """Why `value` is not an integer in low..high."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{what} must be an integer"
    if not low <= value <= high:
        return f"{what} must be between {low} and {high}"
    return None


def coordinate_problem(where: str, position: object) -> str | None:
    """Why `position` is not a WGS84 [longitude, latitude] pair of finite numbers."""
    if not isinstance(position, list | tuple) or len(position) != 2:
        return f"{where}: a position must be [longitude, latitude]"
    lon, lat = position
    if any(isinstance(c, bool) or not isinstance(c, int | float) or not math.isfinite(c)
           for c in (lon, lat)):
        return f"{where}: a position must be two finite numbers"
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        return (f"{where}: ({lon:g}, {lat:g}) is outside WGS84 "
                "(longitude -180..180, latitude -90..90)")
    return None


def line_problems(where: str, positions: Iterable[object]) -> list[str]:
    """Rules of a line's positions: none (a straight line between its nodes) or 2 to
    MAX_POSITIONS, each a WGS84 position."""
    points = list(positions)
    if len(points) > MAX_POSITIONS:
        return [f"{where}: at most {MAX_POSITIONS} positions"]
    if len(points) == 1:
        return [f"{where}: a line needs at least 2 positions (or none: a straight line "
                "between its nodes)"]
    found = (coordinate_problem(f"{where} position {i}", p) for i, p in enumerate(points))
    return [p for p in found if p][:5]


def collect(*problems: str | None) -> list[str]:
    """The problems that are not None, in order."""
    return [p for p in problems if p]


def parameters_problems(model: str, parameters: object) -> list[str]:
    """Rules of simulation parameters: a small JSON object of finite numbers and printable
    text; the built-in model's own parameters also have their types and ranges checked."""
    if not isinstance(parameters, dict):
        return ["parameters must be an object"]
    if len(parameters) > MAX_PARAMETERS:
        return [f"parameters: at most {MAX_PARAMETERS} entries"]
    found = _json_problems("parameters", parameters, 1)
    if model == "builtin" and not found:
        found = _builtin_problems(parameters)
    return found


def _json_problems(where: str, value: object, depth: int) -> list[str]:
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, int):
        return collect(integer_problem(where, value, -MAX_JSON_INTEGER, MAX_JSON_INTEGER))
    if isinstance(value, float):
        return collect(number_problem(where, value, minimum=-MAX_MAGNITUDE))
    if isinstance(value, str):
        return collect(text_problem(where, value, MAX_PARAMETER_TEXT, allow_empty=True))
    if depth > MAX_PARAMETER_DEPTH:
        return [f"{where}: nested more than {MAX_PARAMETER_DEPTH} levels"]
    if isinstance(value, list | tuple):
        return _items_problems(where, list(enumerate(value)), depth)
    if isinstance(value, dict):
        keys = [text_problem(f"{where}: key {str(k)[:20]!r}", k, MAX_ID) for k in value]
        return collect(*keys) or _items_problems(where, list(value.items()), depth)
    return [f"{where} must be JSON (null, boolean, number, text, list or object)"]


def _items_problems(where: str, items: list[tuple[Any, Any]], depth: int) -> list[str]:
    if len(items) > MAX_PARAMETER_ITEMS:
        return [f"{where}: at most {MAX_PARAMETER_ITEMS} items"]
    found: list[str] = []
    for key, item in items:
        found += _json_problems(f"{where}.{key}", item, depth + 1)
    return found


def _builtin_problems(parameters: dict[str, Any]) -> list[str]:
    return collect(*(BUILTIN_PARAMETERS[key](f"parameters.{key}", value)
                     for key, value in parameters.items() if key in BUILTIN_PARAMETERS))


def _algorithm_problem(what: str, value: object) -> str | None:
    if value in BUILTIN_ALGORITHMS:
        return None
    return f"{what} must be one of {', '.join(BUILTIN_ALGORITHMS)}"


def _iterations_problem(what: str, value: object) -> str | None:
    return integer_problem(what, value, 1, 100_000)


def _minutes_problem(what: str, value: object) -> str | None:
    return number_problem(what, value, positive=True)


def _flag_problem(what: str, value: object) -> str | None:
    return None if isinstance(value, bool) else f"{what} must be true or false"


def _gap_problem(what: str, value: object) -> str | None:
    problem = number_problem(what, value, positive=True)
    if problem is None and isinstance(value, int | float) and value >= 1:
        return f"{what} must be below 1"
    return problem


def _unreachable_problem(what: str, value: object) -> str | None:
    if value in ("refuse", "drop"):
        return None
    return f"{what} must be \"refuse\" (the run fails naming the zones) or \"drop\" (that " \
        "demand is left out and reported)"


BUILTIN_PARAMETERS: dict[str, Callable[[str, object], str | None]] = {
    "algorithm": _algorithm_problem, "gap": _gap_problem, "relative_gap": _gap_problem,
    "max_iterations": _iterations_problem, "max_iter": _iterations_problem,
    "accessibility_minutes": _minutes_problem, "reuse": _flag_problem,
    "unreachable_demand": _unreachable_problem,
}


# A drawn line end this close to its node (metres) is at the node: GeoJSON written with 6
# decimals (RFC 7946's advice) moves a position by at most 0.08 m.
END_TOLERANCE_M = 1.0
EARTH_M = 6_371_008.8


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The distance between two WGS84 positions in metres (an equirectangular approximation:
    near-exact at the metre scale of END_TOLERANCE_M, within a fraction of a percent for the
    kilometres a problem may report)."""
    scale = math.cos(math.radians((a[1] + b[1]) / 2))
    dx = math.radians(a[0] - b[0]) * scale
    dy = math.radians(a[1] - b[1])
    return EARTH_M * math.hypot(dx, dy)


def line_direction(line: tuple[tuple[float, float], ...], start: tuple[float, float],
                   end: tuple[float, float]) -> tuple[bool | None, tuple[float, float]]:
    """Whether a link's drawn line must be turned round to run from its from_node at `start`
    to its to_node at `end`: False when both its ends are within END_TOLERANCE_M of theirs,
    True when they are the other way round, None when neither (then the gaps of the first
    and last positions to `start` and `end` say how far off the line is)."""
    forward = (metres(line[0], start), metres(line[-1], end))
    if max(forward) <= END_TOLERANCE_M:
        return False, forward
    if max(metres(line[0], end), metres(line[-1], start)) <= END_TOLERANCE_M:
        return True, forward
    return None, forward


def far_ends_problem(from_node: int, to_node: int, gaps: tuple[float, float],
                     placed: str = "each node is where most of its links end") -> str:
    """Why a line whose ends are `gaps` metres from its nodes does not join them."""
    far = [f"its {end} position is {gap:.1f} m from its {role} {node}"
           for end, gap, role, node in (("first", gaps[0], "from_node", from_node),
                                        ("last", gaps[1], "to_node", to_node))
           if gap > END_TOLERANCE_M]
    return (f"the line does not join its nodes: {' and '.join(far)} (at most "
            f"{END_TOLERANCE_M:g} m; {placed})")


# Link types written as names (GMNS `facility_type`, a GeoJSON or GeoPackage `link_type`):
# OpenStreetMap's highway classes get the numbers an OSM import gives them
# (adapters/gis/osm_tags.py, kept equal by a test), and the usual planning names the class
# nearest them (decision 0715).
LINK_TYPE_NAMES: dict[str, int] = {
    "motorway": 1, "trunk": 2, "primary": 3, "secondary": 4, "tertiary": 5,
    "unclassified": 6, "residential": 7, "living_street": 8, "service": 9, "road": 10,
    "motorway_link": 11, "trunk_link": 12, "primary_link": 13, "secondary_link": 14,
    "tertiary_link": 15,
    "freeway": 1, "expressway": 2, "principal_arterial": 3, "major_arterial": 3,
    "arterial": 3, "minor_arterial": 4, "collector": 5, "major_collector": 5,
    "minor_collector": 6, "local": 7, "local_road": 7, "ramp": 11}


def link_type_named(text: str) -> int | None:
    """The link type a name stands for ('Primary', 'minor arterial', 'motorway-link'), or
    None when it is not one of LINK_TYPE_NAMES."""
    return LINK_TYPE_NAMES.get("_".join(text.lower().replace("-", " ").split()))


def link_type_name_problem(what: str, text: str) -> str:
    """Why `text` is not a link type."""
    return (f"{what} {text[:40]!r} is neither a link type number 0..{MAX_INTEGER} nor a "
            f"known name: {', '.join(LINK_TYPE_NAMES)}")
