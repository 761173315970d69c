"""The simulation result document behind `SimulationRun.Completed.result_sha256`.

The worker's output document (`cartolog.simulation-output/1`, docs/jobs.md):

    {"links": [{"id": "1-2", "flow": 812.5, "volume_capacity": 0.81, "time": 6.2, ...}],
     "zones": [{"id": 1, "trips_from": 120.0, "jobs_within_threshold": 5400.0,
                "logsum_accessibility": 8.1, ...}], ...}

`link_id`, `zone_id` and `trips` are accepted as well. Missing fields are null. Unknown
formats give no result rows (the run row and its indicators still update).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

INDICATOR_UNITS = {
    "vehicle_hours": "h", "vehicle_km": "km", "mean_speed_kmh": "km/h",
    "share_vkm_over_90pct_vc": "ratio", "total_trips": "trips", "mean_trip_minutes": "min",
    "co2_tonnes": "t", "relative_gap": "ratio", "iterations": "count", "converged": "bool",
}


@dataclass(frozen=True)
class LinkResult:
    """Flow, volume/capacity and congested time of one link."""

    link_id: str
    flow: float | None
    volume_capacity: float | None
    congested_time: float | None


@dataclass(frozen=True)
class ZoneResult:
    """Trips and accessibility of one zone."""

    zone_id: int
    trips: float | None
    jobs_within_threshold: float | None
    accessibility: float | None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _first(item: dict[str, Any], *names: str) -> Any:
    for name in names:
        if item.get(name) is not None:
            return item[name]
    return None


def parse(content: bytes) -> tuple[list[LinkResult], list[ZoneResult]]:
    """Link and zone results of a result document; empty lists for an unknown format."""
    try:
        document = json.loads(content)
    except ValueError:
        return [], []
    if not isinstance(document, dict):
        return [], []
    links = [LinkResult(str(_first(k, "link_id", "id")), _number(k.get("flow")),
                        _number(k.get("volume_capacity")), _number(k.get("time")))
             for k in document.get("links") or []
             if isinstance(k, dict) and _first(k, "link_id", "id") is not None]
    zones = [ZoneResult(int(_first(z, "zone_id", "id")), _number(_first(z, "trips", "trips_from")),
                        _number(z.get("jobs_within_threshold")),
                        _number(z.get("logsum_accessibility")))
             for z in document.get("zones") or []
             if isinstance(z, dict) and _first(z, "zone_id", "id") is not None]
    return links, zones


def indicator_unit(name: str) -> str:
    """The unit of a run indicator, from its name."""
    return INDICATOR_UNITS.get(name, "")
