"""A demand matrix as the domain sees it: its zones, its classes and their totals.

The trips themselves live in a claim-check blob (its bytes are parsed in adapters/); the
scenario records only what names and describes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from domain.edits import NetworkIndex
from domain.rules import MAX_MAGNITUDE, collect, integer_problem, key_name_problem

SOURCE_FORMATS = ("omx", "csv")
MAX_UNKNOWN_SHOWN = 20
MAX_CLASSES = 10
MAX_LINK_TYPES = 100


@dataclass(frozen=True)
class DemandMatrixUpload:
    """A parsed matrix: the zone ids it covers, total trips per class, its canonical bytes."""

    zone_ids: tuple[int, ...]
    class_totals: dict[str, float]
    content: bytes
    source_format: str


def upload_problems(upload: DemandMatrixUpload, network: NetworkIndex) -> list[str]:
    """Every reason the matrix does not fit the scenario's zones."""
    unknown = [z for z in upload.zone_ids if z not in network.zone_ids]
    found = [f"unknown zone {z}" for z in unknown[:MAX_UNKNOWN_SHOWN]]
    if len(unknown) > MAX_UNKNOWN_SHOWN:
        found.append(f"and {len(unknown) - MAX_UNKNOWN_SHOWN} more unknown zone(s)")
    if len(upload.zone_ids) > len(network.zone_ids):
        found.append(f"the matrix has {len(upload.zone_ids)} zones, the network "
                     f"{len(network.zone_ids)}")
    if not upload.class_totals:
        found.append("the matrix holds no class")
    if len(upload.class_totals) > MAX_CLASSES:
        return [*found, f"the matrix has {len(upload.class_totals)} classes, at most "
                        f"{MAX_CLASSES} are allowed"]
    for name, total in upload.class_totals.items():
        problem = key_name_problem("a class name", name)
        if problem:
            found.append(problem)
        if not math.isfinite(total) or total < 0:
            found.append(f"class {name!r}: total trips must be finite and non-negative")
    if upload.source_format not in SOURCE_FORMATS:
        found.append(f"format must be one of {', '.join(SOURCE_FORMATS)}")
    return found


@dataclass(frozen=True)
class VehicleClassSpec:
    """A vehicle class a scenario declares: PCE, value of time, cost factors, allowed link
    types (None: every type)."""

    name: str
    pce: float = 1.0
    value_of_time: float = 1.0
    toll_factor: float = 0.0
    distance_factor: float = 0.0
    allowed_link_types: tuple[int, ...] | None = None


def class_problems(classes: list[VehicleClassSpec]) -> list[str]:
    """Every reason the class list cannot be used."""
    found: list[str] = []
    if not 1 <= len(classes) <= MAX_CLASSES:
        found.append(f"declare 1 to {MAX_CLASSES} vehicle classes")
    names = [c.name for c in classes]
    found.extend(f"class {n!r} is declared twice" for n in sorted(set(names))
                 if names.count(n) > 1)
    for c in classes:
        found.extend(collect(key_name_problem("a class name", c.name),
                             _factor_problem(c.name, "pce", c.pce, True),
                             _factor_problem(c.name, "value_of_time", c.value_of_time, True),
                             _factor_problem(c.name, "toll_factor", c.toll_factor, False),
                             _factor_problem(c.name, "distance_factor", c.distance_factor,
                                             False)))
        found.extend(_link_type_problems(c))
    return found


def _factor_problem(name: str, field: str, value: object, positive: bool) -> str | None:
    what = f"class {name!r}: {field}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{what} must be a number"
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        return f"{what} must be a finite, {'positive' if positive else 'non-negative'} number"
    if value > MAX_MAGNITUDE:
        return f"{what} must be at most {MAX_MAGNITUDE:g}"
    return None


def _link_type_problems(c: VehicleClassSpec) -> list[str]:
    if c.allowed_link_types is None:
        return []
    if not c.allowed_link_types:
        return [f"class {c.name!r}: allow at least one link type (or omit the list)"]
    if len(c.allowed_link_types) > MAX_LINK_TYPES:
        return [f"class {c.name!r}: at most {MAX_LINK_TYPES} link types"]
    return collect(*(integer_problem(f"class {c.name!r}: link type", t, 0)
                     for t in c.allowed_link_types))


def class_match_problems(matrix_classes: list[str], declared: list[str]) -> list[str]:
    """Why a run cannot split the demand matrix by the declared vehicle classes: each declared
    class needs trips in the matrix, and each class of trips a declared class (else its
    trips would be dropped)."""
    found = [f"vehicle class {name!r} has no trips in the demand matrix (its classes: "
             f"{', '.join(sorted(matrix_classes))})" for name in declared
             if name not in matrix_classes]
    found += [f"the demand matrix's class {name!r} is not a declared vehicle class (declared: "
              f"{', '.join(declared)}); its trips would be dropped"
              for name in sorted(matrix_classes) if name not in declared]
    return found


MAX_SELECTED_LINKS = 10
SELECT_MODES = ("or", "and")


def select_link_problems(value: object, link_exists: Callable[[str], bool]) -> list[str]:
    """Why a run's ``select_links`` parameter (``[{"name", "links", "mode"}]``) is unusable."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, dict) for s in value):
        return ["select_links must be a list of {name, links, mode}"]
    found: list[str] = []
    names = [s.get("name") for s in value]
    if len(set(map(str, names))) != len(names):
        found.append("select_links: each selection needs its own name")
    links = [k for s in value if isinstance(s.get("links"), list) for k in s["links"]]
    if len(links) > MAX_SELECTED_LINKS:
        found.append(f"select_links: at most {MAX_SELECTED_LINKS} links in all")
    for s in value:
        name = s.get("name")
        problem = key_name_problem("a selection name", name)
        if problem:
            found.append(f"select_links: {problem}")
        if s.get("mode", "or") not in SELECT_MODES:
            found.append(f"select_links {name!r}: mode must be or or and")
        chosen = s.get("links")
        if not isinstance(chosen, list) or not chosen:
            found.append(f"select_links {name!r}: name at least one link")
            continue
        found.extend(f"select_links {name!r}: unknown or closed link {k!r}"
                     for k in chosen if not isinstance(k, str) or not link_exists(k))
    return found
