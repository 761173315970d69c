"""The read model: tenants, datasets, scenarios (state after edits), runs, results, indicators.

Every row is derived from events and from content-addressed blobs named by them (networks,
result documents), so the same log always gives the same rows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from domain.ports import BlobNotFound
from domain.values import DemandParameters, Link, Network, Zone
from projections import geometry, results
from projections.base import (
    Event,
    Op,
    Patch,
    Projection,
    ProjectionError,
    Put,
    TableSpec,
    View,
)
from projections.jsonb import storable

LINK_CHANGE_COLUMNS = ("capacity", "free_flow_time", "speed", "lanes", "toll")
Handler = Callable[["ReadModel", Event, View], list[Op]]
ParsedResults = tuple[list[results.LinkResult], list[results.ZoneResult]]


@dataclass(frozen=True)
class NetworkRows:
    """Node, link and zone rows of a network, without their dataset or scenario ids.

    Rows are shared: callers copy them (`{**ids, **row}`) before changing anything."""

    coordinates: Mapping[int, tuple[float, float]]
    nodes: tuple[Mapping[str, Any], ...]
    links: tuple[Mapping[str, Any], ...]
    zones: tuple[Mapping[str, Any], ...]

    @staticmethod
    def of(network: Network) -> NetworkRows:
        coordinates = {n.id: (n.x, n.y) for n in network.nodes}
        return NetworkRows(
            coordinates,
            tuple({"node_id": n.id, "geom": geometry.point(n.x, n.y)} for n in network.nodes),
            tuple(_link_row(_link_fields(k), coordinates) for k in network.links),
            tuple(_zone_row(z, coordinates) for z in network.zones))


class ReadModel(Projection):
    """Datasets, scenarios, runs, link/zone results and indicators, in PostGIS."""

    name = "read_model"
    on_error = "record"
    tables = (
        TableSpec("tenants", ("tenant_id",)),
        TableSpec("datasets", ("tenant_id", "dataset_id")),
        TableSpec("dataset_nodes", ("tenant_id", "dataset_id", "node_id")),
        TableSpec("dataset_links", ("tenant_id", "dataset_id", "link_id")),
        TableSpec("dataset_zones", ("tenant_id", "dataset_id", "zone_id")),
        TableSpec("scenarios", ("tenant_id", "scenario_id")),
        TableSpec("scenario_links", ("tenant_id", "scenario_id", "link_id")),
        TableSpec("scenario_zones", ("tenant_id", "scenario_id", "zone_id")),
        TableSpec("simulation_runs", ("tenant_id", "run_id")),
        TableSpec("link_results", ("tenant_id", "run_id", "link_id")),
        TableSpec("zone_results", ("tenant_id", "run_id", "zone_id")),
        TableSpec("indicators", ("tenant_id", "run_id", "name")),
    )

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._networks: OrderedDict[tuple[str, str], Network] = OrderedDict()
        self._results_cache: OrderedDict[tuple[str, str], ParsedResults] = OrderedDict()
        self._network_rows: OrderedDict[tuple[str, str], NetworkRows] = OrderedDict()

    def handles(self, event: Event) -> bool:
        """Tenant, Dataset, Scenario and SimulationRun events."""
        return event.type in HANDLERS

    def apply(self, event: Event, view: View) -> list[Op]:
        """Rows for one event."""
        try:
            return HANDLERS[event.type](self, event, view)
        except (KeyError, TypeError, ValueError) as error:
            raise ProjectionError(f"{event.type}: bad payload: {error!r}") from error

    def network(self, tenant_id: str, sha256: str) -> Network:
        """The network behind a claim check (a few recent ones are kept parsed)."""
        key = (tenant_id, sha256)
        if key not in self._networks:
            try:
                raw = self.context.blobs.get(tenant_id, sha256)
            except BlobNotFound:
                raise ProjectionError(f"network blob {sha256} of {tenant_id} not found") from None
            self._networks[key] = Network.from_json(raw)
            if len(self._networks) > 16:
                self._networks.popitem(last=False)
        self._networks.move_to_end(key)
        return self._networks[key]

    def network_rows(self, tenant_id: str, sha256: str) -> NetworkRows:
        """The rows a network gives every dataset and scenario on it (geometry included),
        built once per network: they are the same for every scenario."""
        key = (tenant_id, sha256)
        found = self._network_rows.get(key)
        if found is None:
            found = self._network_rows[key] = NetworkRows.of(self.network(tenant_id, sha256))
            if len(self._network_rows) > 16:
                self._network_rows.popitem(last=False)
        self._network_rows.move_to_end(key)
        return found

    # -- tenants and datasets ---------------------------------------------------------------

    def tenant_registered(self, event: Event, _view: View) -> list[Op]:
        return [Put("tenants", {"tenant_id": event.tenant_id,
                                "display_name": event.payload["display_name"],
                                "registered_at": event.occurred_at})]

    def dataset_imported(self, event: Event, _view: View) -> list[Op]:
        p, tenant, dataset = event.payload, event.tenant_id, event.aggregate_id
        ops: list[Op] = [Put("datasets", {
            "tenant_id": tenant, "dataset_id": dataset, "name": p["name"],
            "network_sha256": p["network_sha256"], "node_count": p["node_count"],
            "link_count": p["link_count"], "zone_count": p["zone_count"],
            "source_format": p["source_format"], "imported_at": event.occurred_at,
            "imported_by": event.actor})]
        rows = self.network_rows(tenant, p["network_sha256"])
        ids = {"tenant_id": tenant, "dataset_id": dataset}
        ops += [Put("dataset_nodes", {**ids, **row}) for row in rows.nodes]
        ops += [Put("dataset_links", {**ids, **row}) for row in rows.links]
        ops += [Put("dataset_zones", {**ids, **row}) for row in rows.zones]
        return ops

    # -- scenarios --------------------------------------------------------------------------

    def scenario_started(self, event: Event, _view: View) -> list[Op]:
        p, tenant, scenario = event.payload, event.tenant_id, event.aggregate_id
        inherited: Mapping[str, Any] = p.get("inherited") or {}
        demand = {**asdict(DemandParameters()), **(inherited.get("demand") or {})}
        ops: list[Op] = [Put("scenarios", {
            "tenant_id": tenant, "scenario_id": scenario, "dataset_id": p["dataset_id"],
            "name": p["name"], "network_sha256": p["network_sha256"],
            "fork_of": p.get("fork_of"), "fork_version": p.get("fork_version"),
            "version": event.aggregate_version, "archived": False, "archive_reason": None,
            "trip_rate": demand["trip_rate"], "deterrence": demand["deterrence"],
            "beta": demand["beta"], "created_at": event.occurred_at,
            "updated_at": event.occurred_at})]
        rows = self.network_rows(tenant, p["network_sha256"])
        ids = {"tenant_id": tenant, "scenario_id": scenario}
        changes: Mapping[str, Mapping[str, float]] = inherited.get("link_changes") or {}
        closed = set(inherited.get("closed_links") or [])
        added_links: Mapping[str, Mapping[str, Any]] = inherited.get("added_links") or {}
        links = list(rows.links)
        links += [_link_row(link, rows.coordinates) for link in added_links.values()]
        for base in links:
            link_id = base["link_id"]
            row = {**ids, **base, "speed": None, "added": link_id in added_links,
                   "closed": link_id in closed}
            if link_id in changes:
                row.update(_link_changes(changes[link_id]))
            ops.append(Put("scenario_links", row))
        attributes: Mapping[str, Mapping[str, float]] = inherited.get("zone_attributes") or {}
        for base in rows.zones:
            row = {**ids, **base}
            row.update(attributes.get(str(base["zone_id"]), {}))
            ops.append(Put("scenario_zones", row))
        return ops

    def zone_attributes_set(self, event: Event, _view: View) -> list[Op]:
        p = event.payload
        changes = {k: p[k] for k in ("population", "jobs") if p.get(k) is not None}
        key = (event.tenant_id, event.aggregate_id, int(p["zone_id"]))
        return [Patch("scenario_zones", key, changes), _scenario_moved(event)]

    def link_added(self, event: Event, view: View) -> list[Op]:
        link = event.payload["link"]
        scenario = view.get("scenarios", (event.tenant_id, event.aggregate_id))
        if scenario is None:
            raise ProjectionError(f"scenario {event.aggregate_id} not projected")
        coordinates = self.network_rows(event.tenant_id, scenario["network_sha256"]).coordinates
        row = {"tenant_id": event.tenant_id, "scenario_id": event.aggregate_id,
               **_link_row(link, coordinates), "speed": None, "added": True, "closed": False}
        return [Put("scenario_links", row), _scenario_moved(event)]

    def link_modified(self, event: Event, _view: View) -> list[Op]:
        key = (event.tenant_id, event.aggregate_id, event.payload["link_id"])
        return [Patch("scenario_links", key, _link_changes(event.payload["changes"])),
                _scenario_moved(event)]

    def link_closed(self, event: Event, _view: View) -> list[Op]:
        key = (event.tenant_id, event.aggregate_id, event.payload["link_id"])
        return [Patch("scenario_links", key, {"closed": True}), _scenario_moved(event)]

    def demand_changed(self, event: Event, _view: View) -> list[Op]:
        p = event.payload
        return [_scenario_moved(event, trip_rate=p["trip_rate"], deterrence=p["deterrence"],
                                beta=p["beta"])]

    def scenario_version_moved(self, event: Event, _view: View) -> list[Op]:
        return [_scenario_moved(event)]

    def scenario_archived(self, event: Event, _view: View) -> list[Op]:
        return [_scenario_moved(event, archived=True, archive_reason=event.payload["reason"])]

    def scenario_restored(self, event: Event, _view: View) -> list[Op]:
        return [_scenario_moved(event, archived=False, archive_reason=None)]

    def scenario_merged(self, event: Event, _view: View) -> list[Op]:
        return [_scenario_moved(event)]

    # -- simulation runs --------------------------------------------------------------------

    def run_requested(self, event: Event, _view: View) -> list[Op]:
        p = event.payload
        return [Put("simulation_runs", {
            "tenant_id": event.tenant_id, "run_id": event.aggregate_id,
            "scenario_id": p["scenario_id"], "scenario_version": p["scenario_version"],
            "model": p["model"], "parameters": storable(p["parameters"]), "status": "queued",
            "attempt": 0, "max_attempts": p["max_attempts"],
            "attempts_allowed": p["max_attempts"], "idempotency_key": p["idempotency_key"],
            "worker": None, "last_error": None, "result_sha256": None, "duration_s": None,
            "requested_at": event.occurred_at, "started_at": None, "finished_at": None,
            "updated_at": event.occurred_at, "version": event.aggregate_version})]

    def run_started(self, event: Event, _view: View) -> list[Op]:
        p = event.payload
        return [_run_moved(event, status="running", attempt=p["attempt"], worker=p["worker"],
                           started_at=event.occurred_at)]

    def attempt_failed(self, event: Event, _view: View) -> list[Op]:
        return [_run_moved(event, status="retrying", last_error=event.payload["error"])]

    def run_completed(self, event: Event, view: View) -> list[Op]:
        p, tenant, run_id = event.payload, event.tenant_id, event.aggregate_id
        run = view.get("simulation_runs", (tenant, run_id))
        if run is None:
            raise ProjectionError(f"run {run_id} not projected")
        ops: list[Op] = [_run_moved(event, status="completed", result_sha256=p["result_sha256"],
                                    duration_s=p["duration_s"],
                                    finished_at=event.occurred_at)]
        ids = {"tenant_id": tenant, "run_id": run_id}
        ops += [Put("indicators", {**ids, "scenario_id": run["scenario_id"], "name": name,
                                   "value": float(value), "unit": results.indicator_unit(name)})
                for name, value in sorted(p["indicators"].items())]
        links, zones = self._results(tenant, p["result_sha256"])
        ops += [Put("link_results", {"tenant_id": tenant, "run_id": run_id, "link_id": link_id,
                                     "flow": flow, "volume_capacity": ratio,
                                     "congested_time": time})
                for link_id, flow, ratio, time in links]
        ops += [Put("zone_results", {"tenant_id": tenant, "run_id": run_id, "zone_id": zone_id,
                                     "trips": trips, "jobs_within_threshold": jobs,
                                     "accessibility": accessibility})
                for zone_id, trips, jobs, accessibility in zones]
        return ops

    def _results(self, tenant_id: str, sha256: str) -> ParsedResults:
        """Parsed result documents, kept for a while: blobs never change once stored, and a
        claim check is stored before the event naming it, so a missing one stays missing."""
        key = (tenant_id, sha256)
        if key not in self._results_cache:
            try:
                self._results_cache[key] = results.parse(self.context.blobs.get(*key))
            except BlobNotFound:
                self._results_cache[key] = ([], [])
            if len(self._results_cache) > 64:
                self._results_cache.popitem(last=False)
        return self._results_cache[key]

    def run_dead_lettered(self, event: Event, _view: View) -> list[Op]:
        return [_run_moved(event, status="dead_lettered", last_error=event.payload["error"],
                           finished_at=event.occurred_at)]

    def run_cancelled(self, event: Event, _view: View) -> list[Op]:
        return [_run_moved(event, status="cancelled", last_error=event.payload["reason"],
                           finished_at=event.occurred_at)]

    def run_redriven(self, event: Event, view: View) -> list[Op]:
        run = view.get("simulation_runs", (event.tenant_id, event.aggregate_id))
        if run is None:
            raise ProjectionError(f"run {event.aggregate_id} not projected")
        allowed = int(run["attempt"]) + int(event.payload["extra_attempts"])
        return [_run_moved(event, status="queued", attempts_allowed=allowed, finished_at=None)]


HANDLERS: dict[str, Handler] = {
    "Tenant.Registered": ReadModel.tenant_registered,
    "Dataset.Imported": ReadModel.dataset_imported,
    "Scenario.Created": ReadModel.scenario_started,
    "Scenario.Forked": ReadModel.scenario_started,
    "Scenario.ZoneAttributesSet": ReadModel.zone_attributes_set,
    "Scenario.LinkAdded": ReadModel.link_added,
    "Scenario.LinkModified": ReadModel.link_modified,
    "Scenario.LinkClosed": ReadModel.link_closed,
    "Scenario.DemandParametersChanged": ReadModel.demand_changed,
    "Scenario.Archived": ReadModel.scenario_archived,
    "Scenario.Restored": ReadModel.scenario_restored,
    "Scenario.MergeApplied": ReadModel.scenario_merged,
    "Scenario.DemandMatrixSet": ReadModel.scenario_version_moved,
    "Scenario.DemandMatrixRemoved": ReadModel.scenario_version_moved,
    "Scenario.VehicleClassesDeclared": ReadModel.scenario_version_moved,
    "SimulationRun.Requested": ReadModel.run_requested,
    "SimulationRun.Started": ReadModel.run_started,
    "SimulationRun.AttemptFailed": ReadModel.attempt_failed,
    "SimulationRun.Completed": ReadModel.run_completed,
    "SimulationRun.DeadLettered": ReadModel.run_dead_lettered,
    "SimulationRun.Cancelled": ReadModel.run_cancelled,
    "SimulationRun.Redriven": ReadModel.run_redriven,
}


def _scenario_moved(event: Event, **changes: Any) -> Patch:
    return Patch("scenarios", (event.tenant_id, event.aggregate_id),
                 {"version": event.aggregate_version, "updated_at": event.occurred_at, **changes})


def _run_moved(event: Event, **changes: Any) -> Patch:
    return Patch("simulation_runs", (event.tenant_id, event.aggregate_id),
                 {"version": event.aggregate_version, "updated_at": event.occurred_at, **changes})


_LINK_FIELDS = tuple(Link.__dataclass_fields__)


def _link_fields(link: Link) -> dict[str, Any]:
    """A link's fields as a dict, like `asdict` but without deep-copying its geometry."""
    return {f: getattr(link, f) for f in _LINK_FIELDS}


def _link_row(link: Mapping[str, Any], coordinates: Mapping[int, tuple[float, float]]
              ) -> dict[str, Any]:
    shape = [tuple(c) for c in link.get("geometry") or ()]
    if len(shape) < 2 and link["from_node"] in coordinates and link["to_node"] in coordinates:
        shape = [coordinates[link["from_node"]], coordinates[link["to_node"]]]
    fields = {f: link[f] for f in Link.__dataclass_fields__ if f not in ("id", "geometry")}
    return {"link_id": link["id"], **fields, "geom": geometry.line(shape)}


def _zone_row(zone: Zone, coordinates: Mapping[int, tuple[float, float]]) -> dict[str, Any]:
    centre = coordinates.get(zone.centroid_node)
    return {"zone_id": zone.id, "centroid_node": zone.centroid_node,
            "population": zone.population, "jobs": zone.jobs,
            "geom": geometry.multipolygon(zone.polygon),
            "centroid": geometry.point(*centre) if centre else None}


def _link_changes(changes: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in changes.items() if k in LINK_CHANGE_COLUMNS}
