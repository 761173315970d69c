"""The feature collections OGC API - Features serves: each scenario's links and zones, and
each completed run's link and zone results, read from the tenant's read model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from api.reads import TenantReads

COLLECTION_ID = re.compile(
    r"^(scenario|run)-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"-(links|zones)$")


@dataclass(frozen=True)
class Layer:
    """How one kind of collection is read: its columns, rows, geometry and feature id."""

    columns: str
    source: str
    geometry: str
    key: str


LAYERS = {
    ("scenario", "links"): Layer(
        "l.link_id, l.from_node, l.to_node, l.capacity, l.length, l.free_flow_time, l.b, "
        "l.power, l.toll, l.link_type, l.lanes, l.speed, l.added, l.closed",
        "scenario_links l JOIN scenarios s ON s.tenant_id = l.tenant_id "
        "AND s.scenario_id = l.scenario_id WHERE l.tenant_id = :tenant "
        "AND l.scenario_id = :subject AND NOT s.archived",
        "l.geom", "l.link_id"),
    ("scenario", "zones"): Layer(
        "z.zone_id, z.centroid_node, z.population, z.jobs",
        "scenario_zones z JOIN scenarios s ON s.tenant_id = z.tenant_id "
        "AND s.scenario_id = z.scenario_id WHERE z.tenant_id = :tenant "
        "AND z.scenario_id = :subject AND NOT s.archived",
        "coalesce(z.geom, z.centroid)", "z.zone_id"),
    ("run", "links"): Layer(
        "r.link_id, r.flow, r.volume_capacity, r.congested_time, l.from_node, l.to_node, "
        "l.capacity, l.closed",
        "link_results r JOIN simulation_runs s ON s.tenant_id = r.tenant_id "
        "AND s.run_id = r.run_id LEFT JOIN scenario_links l ON l.tenant_id = r.tenant_id "
        "AND l.scenario_id = s.scenario_id AND l.link_id = r.link_id "
        "WHERE r.tenant_id = :tenant AND r.run_id = :subject AND s.status = 'completed'",
        "l.geom", "r.link_id"),
    ("run", "zones"): Layer(
        "r.zone_id, r.trips, r.jobs_within_threshold, r.accessibility, z.population, z.jobs",
        "zone_results r JOIN simulation_runs s ON s.tenant_id = r.tenant_id "
        "AND s.run_id = r.run_id LEFT JOIN scenario_zones z ON z.tenant_id = r.tenant_id "
        "AND z.scenario_id = s.scenario_id AND z.zone_id = r.zone_id "
        "WHERE r.tenant_id = :tenant AND r.run_id = :subject AND s.status = 'completed'",
        "coalesce(z.geom, z.centroid)", "r.zone_id"),
}

SUBJECTS_SQL = """
SELECT 'scenario' AS kind, s.scenario_id AS subject, s.name AS name, s.version AS version,
       s.scenario_id AS scenario_id, s.updated_at AS at
FROM scenarios s WHERE s.tenant_id = :tenant AND NOT s.archived
  AND (CAST(:only AS uuid) IS NULL OR s.scenario_id = CAST(:only AS uuid))
UNION ALL
SELECT 'run', r.run_id, s.name, r.scenario_version, s.scenario_id, r.finished_at
FROM simulation_runs r JOIN scenarios s ON s.tenant_id = r.tenant_id
     AND s.scenario_id = r.scenario_id
WHERE r.tenant_id = :tenant AND r.status = 'completed' AND NOT s.archived
  AND (CAST(:only AS uuid) IS NULL OR r.run_id = CAST(:only AS uuid))
ORDER BY 6 DESC NULLS LAST, 2"""

EXTENTS_SQL = """
SELECT scenario_id, ST_XMin(e) AS x1, ST_YMin(e) AS y1, ST_XMax(e) AS x2, ST_YMax(e) AS y2
FROM (SELECT scenario_id, ST_Extent(geom) AS e FROM (
        SELECT scenario_id, geom FROM scenario_links WHERE tenant_id = :tenant
        UNION ALL
        SELECT scenario_id, coalesce(geom, centroid) FROM scenario_zones
        WHERE tenant_id = :tenant) g GROUP BY scenario_id) x"""

BOX = "(NOT :filter OR {geometry} && ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326))"


@dataclass(frozen=True)
class Collection:
    """One collection a tenant can read."""

    id: str
    kind: str
    subject: UUID
    layer: str
    title: str
    extent: tuple[float, float, float, float] | None

    @property
    def spec(self) -> Layer:
        """How its rows are read."""
        return LAYERS[(self.kind, self.layer)]


def parse_id(collection_id: str) -> tuple[str, UUID, str] | None:
    """(kind, subject, layer) of a collection id, or None when it is not one."""
    match = COLLECTION_ID.match(collection_id)
    if match is None:
        return None
    return match.group(1), UUID(match.group(2)), match.group(3)


def collections(reads: TenantReads, only: UUID | None = None,
                with_extent: bool = True) -> list[Collection]:
    """Every collection of the tenant (or of one scenario or run), most recent first."""
    extents = {row["scenario_id"]: (row["x1"], row["y1"], row["x2"], row["y2"])
               for row in (reads.rows(EXTENTS_SQL) if with_extent else [])
               if row["x1"] is not None}
    found = []
    for row in reads.rows(SUBJECTS_SQL, only=str(only) if only else None):
        for layer in ("links", "zones"):
            found.append(Collection(
                f"{row['kind']}-{row['subject']}-{layer}", row["kind"], row["subject"], layer,
                _title(row, layer), extents.get(row["scenario_id"])))
    return found


def find(reads: TenantReads, collection_id: str, with_extent: bool = False
         ) -> Collection | None:
    """The tenant's collection of that id, or None."""
    parsed = parse_id(collection_id)
    if parsed is None:
        return None
    candidates = collections(reads, parsed[1], with_extent)
    return next((c for c in candidates if c.id == collection_id), None)


def _title(row: Any, layer: str) -> str:
    if row["kind"] == "scenario":
        return f"{row['name']}: {layer}"
    short = str(row["subject"])[:8]
    noun = "link" if layer == "links" else "zone"
    return f"{row['name']} v{row['version']}, run {short}: {noun} results"


def count(reads: TenantReads, collection: Collection, box: dict[str, Any]) -> int:
    """How many features match the bbox filter."""
    spec = collection.spec
    sql = (f"SELECT count(*) FROM {spec.source} AND "
           f"{BOX.format(geometry=spec.geometry)}")
    return int(reads.scalar(sql, subject=collection.subject, **box))


def page(reads: TenantReads, collection: Collection, box: dict[str, Any], offset: int,
         limit: int) -> list[dict[str, Any]]:
    """One page of features, ordered by feature id."""
    spec = collection.spec
    sql = (f"SELECT {spec.columns}, ST_AsGeoJSON({spec.geometry}, 7)::json AS geometry "
           f"FROM {spec.source} AND {BOX.format(geometry=spec.geometry)} "
           f"ORDER BY {spec.key} LIMIT :limit OFFSET :offset")
    rows = reads.rows(sql, subject=collection.subject, limit=limit, offset=offset, **box)
    return [feature(dict(row), spec.key) for row in rows]


def one(reads: TenantReads, collection: Collection, feature_id: str) -> dict[str, Any] | None:
    """One feature by id, or None (an id PostgreSQL text cannot hold matches nothing)."""
    if "\x00" in feature_id:
        return None
    spec = collection.spec
    sql = (f"SELECT {spec.columns}, ST_AsGeoJSON({spec.geometry}, 7)::json AS geometry "
           f"FROM {spec.source} AND CAST({spec.key} AS text) = :feature")
    rows = reads.rows(sql, subject=collection.subject, feature=feature_id)
    return feature(dict(rows[0]), spec.key) if rows else None


def feature(row: dict[str, Any], key: str) -> dict[str, Any]:
    """A GeoJSON Feature; the id is the link id (text) or the zone number (integer)."""
    geometry = row.pop("geometry")
    return {"type": "Feature", "id": row[key.split(".")[1]], "geometry": geometry,
            "properties": row}
