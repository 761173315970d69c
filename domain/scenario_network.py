"""A scenario's effective network: its dataset's network with the scenario's edits applied,
as the simulation sees it (closed links left out)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from domain.values import Link, Network, Zone


def effective_network(base: Network, edited: dict[str, Any]) -> Network:
    """`base` with `Scenario.edited_state()` applied: added, modified, closed links, zones."""
    closed = set(edited.get("closed_links", []))
    changes: dict[str, dict[str, float]] = edited.get("link_changes", {})
    links = list(base.links) + [_added(link) for link in edited.get("added_links", {}).values()]
    kept = tuple(_changed(link, changes.get(link.id, {})) for link in links
                 if link.id not in closed)
    attributes: dict[str, dict[str, float]] = edited.get("zone_attributes", {})
    zones = tuple(_zone(zone, attributes.get(str(zone.id), {})) for zone in base.zones)
    return replace(base, links=kept, zones=zones)


def _added(link: dict[str, Any]) -> Link:
    fields = {k: v for k, v in link.items() if k in Link.__dataclass_fields__}
    fields["geometry"] = tuple(tuple(c) for c in fields.get("geometry") or ())
    return Link(**fields)


def _changed(link: Link, change: dict[str, float]) -> Link:
    """The worker's order: lanes (capacity scaled with them), capacity, then speed."""
    if change.get("lanes") is not None:
        lanes = float(change["lanes"])
        link = replace(link, lanes=lanes, capacity=link.capacity * lanes / link.lanes)
    if change.get("capacity") is not None:
        link = replace(link, capacity=float(change["capacity"]))
    if change.get("speed") is not None:
        link = replace(link, free_flow_time=link.length * 60.0 / float(change["speed"]))
    return link


def _zone(zone: Zone, values: dict[str, float]) -> Zone:
    population = values.get("population")
    jobs = values.get("jobs")
    return replace(zone, population=zone.population if population is None else population,
                   jobs=zone.jobs if jobs is None else jobs)
