"""The simulation result document behind `SimulationRun.Completed.result_sha256`.

The worker's output document (`cartolog.simulation-output/1`, docs/jobs.md):

    {"links": [{"id": "1-2", "flow": 812.5, "volume_capacity": 0.81, "time": 6.2, ...}],
     "zones": [{"id": 1, "trips_from": 120.0, "jobs_within_threshold": 5400.0,
                "logsum_accessibility": 8.1, ...}], ...}

`link_id`, `zone_id` and `trips` are accepted as well. Missing fields are null. Unknown
formats give no result rows (the run row and its indicators still update).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from projections.jsonparse import loads

INDICATOR_UNITS = {
    "vehicle_hours": "h", "vehicle_km": "km", "mean_speed_kmh": "km/h",
    "share_vkm_over_90pct_vc": "ratio", "total_trips": "trips", "mean_trip_minutes": "min",
    "co2_tonnes": "t", "relative_gap": "ratio", "iterations": "count", "converged": "bool",
    "stalled": "bool", "fallback_bfw": "bool", "unassigned_trips": "trips",
    "unassigned_pairs": "count",
}


class LinkResult(NamedTuple):
    """Flow, volume/capacity and congested time of one link."""

    link_id: str
    flow: float | None
    volume_capacity: float | None
    congested_time: float | None


class ZoneResult(NamedTuple):
    """Trips and accessibility of one zone."""

    zone_id: int
    trips: float | None
    jobs_within_threshold: float | None
    accessibility: float | None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if number - number == 0.0 else None  # None for NaN and infinities


def parse(content: bytes) -> tuple[list[LinkResult], list[ZoneResult]]:
    """Link and zone results of a result document; empty lists for an unknown format.

    Written for speed (a replay parses every result document of the log): no helper call
    for a present, finite number."""
    try:
        document = loads(content)
    except ValueError:
        return [], []
    if not isinstance(document, dict):
        return [], []
    number, new = _number, tuple.__new__
    links: list[LinkResult] = []
    append = links.append
    for k in document.get("links") or ():
        if not isinstance(k, dict):
            continue
        get = k.get
        ident = get("link_id")
        if ident is None and (ident := get("id")) is None:
            continue
        flow, ratio, time = get("flow"), get("volume_capacity"), get("time")
        append(new(LinkResult, (
            ident if type(ident) is str else str(ident),
            flow if type(flow) is float and flow - flow == 0.0 else number(flow),
            ratio if type(ratio) is float and ratio - ratio == 0.0 else number(ratio),
            time if type(time) is float and time - time == 0.0 else number(time))))
    zones: list[ZoneResult] = []
    for z in document.get("zones") or ():
        if not isinstance(z, dict):
            continue
        ident = z.get("zone_id")
        if ident is None and (ident := z.get("id")) is None:
            continue
        trips = z.get("trips")
        if trips is None:
            trips = z.get("trips_from")
        zones.append(new(ZoneResult, (int(ident), number(trips),
                                      number(z.get("jobs_within_threshold")),
                                      number(z.get("logsum_accessibility")))))
    return links, zones


def indicator_unit(name: str) -> str:
    """The unit of a run indicator, from its name."""
    return INDICATOR_UNITS.get(name, "")
