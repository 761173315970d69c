"""Exports: a scenario's network at a version (GeoPackage, GMNS zip, GeoJSON) and a run's
network with its results (GeoPackage with QGIS styles, or a zip of CSV files), written to a
file in a folder the caller owns, so the HTTP layer can stream it."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np

from adapters.demand_matrix import DemandMatrix
from adapters.gis.gmns import write_gmns
from adapters.gis.gpkg import write_geopackage
from adapters.gis.styles import RUN_STYLES
from adapters.gis.tables import Table, network_tables, with_results
from domain.application import Cartolog
from domain.scenario_network import effective_network
from domain.values import Network

Rows = Callable[..., Iterable[Any]]
SCENARIO_FORMATS = ("gpkg", "gmns", "geojson")
RUN_FORMATS = ("gpkg", "csv")
MEDIA = {"gpkg": "application/geopackage+sqlite3", "gmns": "application/zip",
         "csv": "application/zip", "geojson": "application/geo+json"}
SUFFIX = {"gpkg": ".gpkg", "gmns": "-gmns.zip", "csv": "-csv.zip", "geojson": ".geojson"}
LINK_RESULTS = ("flow", "volume_capacity", "congested_time")
ZONE_RESULTS = ("trips", "jobs_within_threshold", "accessibility")


@dataclass(frozen=True)
class ExportFile:
    """A written export: where it is, its media type, the file name to offer."""

    path: Path
    media_type: str
    filename: str


def export_scenario(network: Network, name: str, fmt: str, folder: Path) -> ExportFile:
    """The network in `fmt` (gpkg, gmns or geojson)."""
    target = folder / f"{_slug(name)}{SUFFIX[fmt]}"
    if fmt == "gpkg":
        write_geopackage(target, network_tables(network))
    elif fmt == "gmns":
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            write_gmns(network, archive)
    else:
        target.write_text(json.dumps(geojson_document(network, name)))
    return ExportFile(target, MEDIA[fmt], target.name)


def geojson_document(network: Network, name: str) -> dict[str, Any]:
    """The body `POST /v1/datasets` takes (format geojson): exported, it imports back as the
    same nodes, links, zones and OD matrix (`demand`, a list of [origin, destination, trips],
    present when the network has one)."""
    links, zones = network_tables(network)[1:3]
    document: dict[str, Any] = {
        "format": "geojson", "name": name, "first_thru_node": network.first_thru_node,
        "links": _collection(links, "link_id"), "zones": _collection(zones, "zone_id")}
    if network.od_matrix:
        document["demand"] = [[o, d, t] for o, d, t in network.od_matrix]
    return document


def _collection(table: Table, key: str) -> dict[str, Any]:
    features = []
    for i, shape in enumerate(table.geometries):
        properties = {k: v[i] for k, v in table.columns.items() if k != key}
        properties["id"] = table.columns[key][i]
        features.append({"type": "Feature", "properties": properties,
                         "geometry": shape.__geo_interface__ if shape is not None else None})
    return {"type": "FeatureCollection", "features": features}


def export_run(network: Network, rows: Rows, run_id: str, name: str, fmt: str,
               folder: Path) -> ExportFile:
    """Links and zones with the run's results, and its indicators, in `fmt` (gpkg or csv)."""
    tables = run_tables(network, rows, run_id)
    target = folder / f"{_slug(name)}-run-{run_id[:8]}{SUFFIX[fmt]}"
    if fmt == "gpkg":
        styles = {layer: (f"{layer} ({attr})", qml) for layer, (attr, qml) in RUN_STYLES.items()}
        write_geopackage(target, tables, styles)
    else:
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for table in tables:
                archive.writestr(f"{table.name}.csv", _csv(table))
    return ExportFile(target, MEDIA[fmt], target.name)


def run_tables(network: Network, rows: Rows, run_id: str) -> list[Table]:
    """nodes, links (+ results), zones (+ results), indicators, and demand if any."""
    nodes, links, zones, *demand = network_tables(network)
    link_rows = {r["link_id"]: r for r in rows(
        "SELECT link_id, flow, volume_capacity, congested_time FROM link_results "
        "WHERE tenant_id = :tenant AND run_id = :run", run=run_id)}
    zone_rows = {r["zone_id"]: r for r in rows(
        "SELECT zone_id, trips, jobs_within_threshold, accessibility FROM zone_results "
        "WHERE tenant_id = :tenant AND run_id = :run", run=run_id)}
    indicators = list(rows("SELECT name, value, unit FROM indicators WHERE tenant_id = :tenant "
                           "AND run_id = :run ORDER BY name", run=run_id))
    table = Table("indicators", {"name": [r["name"] for r in indicators],
                                 "value": [float(r["value"]) for r in indicators],
                                 "unit": [r["unit"] for r in indicators]})
    return [nodes, with_results(links, "link_id", link_rows, LINK_RESULTS),
            with_results(zones, "zone_id", zone_rows, ZONE_RESULTS), table, *demand]


def _csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    spatial = table.geometry_type is not None
    writer.writerow([*table.columns, *(["wkt"] if spatial else [])])
    for i in range(len(table)):
        shape = table.geometries[i] if spatial else None
        writer.writerow([*(_cell(v[i]) for v in table.columns.values()),
                         *([shape.wkt if shape is not None else ""] if spatial else [])])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else ("" if value is None else value)


def _slug(name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return "-".join(part for part in cleaned.split("-") if part)[:60] or "export"


def scenario_network(app: Cartolog, tenant: str, scenario_id: UUID,
                     version: int | None = None) -> tuple[str, Network]:
    """A scenario's name and effective network, now or at `version`. Its OD matrix is the
    demand the scenario's runs assign: an uploaded demand matrix (its classes summed; each
    class's own is `cartolog scenario demand export`), else the dataset's."""
    scenario = app.get_scenario(tenant, scenario_id, version)
    base = app.load_network(tenant, scenario.network_sha256)
    network = effective_network(base, scenario.edited_state())
    if scenario.demand_matrix is None:
        return scenario.name, network
    matrix = DemandMatrix.from_blob(app.demand_matrix_content(tenant, scenario_id,
                                                              scenario.version))
    total = np.sum(list(matrix.trips.values()), axis=0)
    rows, columns = np.nonzero(total)
    ids = matrix.zone_ids
    od = tuple((int(ids[i]), int(ids[j]), float(total[i, j]))
               for i, j in zip(rows.tolist(), columns.tolist(), strict=True))
    return scenario.name, replace(network, od_matrix=od)
