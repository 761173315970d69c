"""Read-model tables (PostGIS, SRID 4326) on the shared metadata, and projector bookkeeping.

Created by migration 0002. Every read-model table has `tenant_id` first in its primary
key; geometry columns have GiST indexes. Rows are written only by projections
(projections/), so they hold only values derived from events.
"""

from __future__ import annotations

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

from adapters.tables import metadata

SRID = 4326


def _geometry(name: str, kind: str, nullable: bool = True) -> Column[Any]:
    return Column(name, Geometry(kind, srid=SRID, spatial_index=False), nullable=nullable)


def _gist(table: str, column: str = "geom") -> Index:
    return Index(f"ix_{table}_{column}", column, postgresql_using="gist")


def _time(name: str, nullable: bool = True) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _link_columns() -> list[Column[Any]]:
    return [Column("from_node", Integer, nullable=False),
            Column("to_node", Integer, nullable=False),
            Column("capacity", Float), Column("length", Float), Column("free_flow_time", Float),
            Column("b", Float), Column("power", Float), Column("toll", Float),
            Column("link_type", Integer), Column("lanes", Float), _geometry("geom", "LINESTRING")]


def _zone_columns() -> list[Column[Any]]:
    return [Column("centroid_node", Integer, nullable=False), Column("population", Float),
            Column("jobs", Float), _geometry("geom", "MULTIPOLYGON"),
            _geometry("centroid", "POINT")]


tenants = Table(
    "tenants", metadata,
    Column("tenant_id", Text, primary_key=True), Column("display_name", Text, nullable=False),
    _time("registered_at", False),
)

datasets = Table(
    "datasets", metadata,
    Column("tenant_id", Text), Column("dataset_id", Uuid), Column("name", Text, nullable=False),
    Column("network_sha256", Text, nullable=False), Column("node_count", Integer),
    Column("link_count", Integer), Column("zone_count", Integer), Column("source_format", Text),
    _time("imported_at", False), Column("imported_by", Text),
    PrimaryKeyConstraint("tenant_id", "dataset_id"),
)

dataset_nodes = Table(
    "dataset_nodes", metadata,
    Column("tenant_id", Text), Column("dataset_id", Uuid), Column("node_id", Integer),
    _geometry("geom", "POINT"),
    PrimaryKeyConstraint("tenant_id", "dataset_id", "node_id"), _gist("dataset_nodes"),
)

dataset_links = Table(
    "dataset_links", metadata,
    Column("tenant_id", Text), Column("dataset_id", Uuid), Column("link_id", Text),
    *_link_columns(),
    PrimaryKeyConstraint("tenant_id", "dataset_id", "link_id"), _gist("dataset_links"),
)

dataset_zones = Table(
    "dataset_zones", metadata,
    Column("tenant_id", Text), Column("dataset_id", Uuid), Column("zone_id", Integer),
    *_zone_columns(),
    PrimaryKeyConstraint("tenant_id", "dataset_id", "zone_id"), _gist("dataset_zones"),
    _gist("dataset_zones", "centroid"),
)

scenarios = Table(
    "scenarios", metadata,
    Column("tenant_id", Text), Column("scenario_id", Uuid),
    Column("dataset_id", Uuid, nullable=False), Column("name", Text, nullable=False),
    Column("network_sha256", Text, nullable=False), Column("fork_of", Uuid),
    Column("fork_version", Integer), Column("version", Integer, nullable=False),
    Column("archived", Boolean, nullable=False), Column("archive_reason", Text),
    Column("trip_rate", Float), Column("deterrence", Text), Column("beta", Float),
    _time("created_at", False), _time("updated_at", False),
    PrimaryKeyConstraint("tenant_id", "scenario_id"),
    Index("ix_scenarios_dataset", "tenant_id", "dataset_id"),
)

scenario_links = Table(
    "scenario_links", metadata,
    Column("tenant_id", Text), Column("scenario_id", Uuid), Column("link_id", Text),
    *_link_columns(), Column("speed", Float), Column("added", Boolean, nullable=False),
    Column("closed", Boolean, nullable=False),
    PrimaryKeyConstraint("tenant_id", "scenario_id", "link_id"), _gist("scenario_links"),
)

scenario_zones = Table(
    "scenario_zones", metadata,
    Column("tenant_id", Text), Column("scenario_id", Uuid), Column("zone_id", Integer),
    *_zone_columns(),
    PrimaryKeyConstraint("tenant_id", "scenario_id", "zone_id"), _gist("scenario_zones"),
    _gist("scenario_zones", "centroid"),
)

simulation_runs = Table(
    "simulation_runs", metadata,
    Column("tenant_id", Text), Column("run_id", Uuid), Column("scenario_id", Uuid, nullable=False),
    Column("scenario_version", Integer, nullable=False), Column("model", Text, nullable=False),
    Column("parameters", JSONB, nullable=False), Column("status", Text, nullable=False),
    Column("attempt", Integer, nullable=False), Column("max_attempts", Integer, nullable=False),
    Column("attempts_allowed", Integer, nullable=False), Column("idempotency_key", Text),
    Column("worker", Text), Column("last_error", Text), Column("result_sha256", Text),
    Column("duration_s", Float), _time("requested_at", False), _time("started_at"),
    _time("finished_at"), _time("updated_at", False), Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "run_id"),
    Index("ix_simulation_runs_scenario", "tenant_id", "scenario_id"),
)

link_results = Table(
    "link_results", metadata,
    Column("tenant_id", Text), Column("run_id", Uuid), Column("link_id", Text),
    Column("flow", Float), Column("volume_capacity", Float), Column("congested_time", Float),
    PrimaryKeyConstraint("tenant_id", "run_id", "link_id"),
)

zone_results = Table(
    "zone_results", metadata,
    Column("tenant_id", Text), Column("run_id", Uuid), Column("zone_id", Integer),
    Column("trips", Float), Column("jobs_within_threshold", Float), Column("accessibility", Float),
    PrimaryKeyConstraint("tenant_id", "run_id", "zone_id"),
)

indicators = Table(
    "indicators", metadata,
    Column("tenant_id", Text), Column("run_id", Uuid), Column("name", Text),
    Column("scenario_id", Uuid, nullable=False), Column("value", Float, nullable=False),
    Column("unit", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "run_id", "name"),
    Index("ix_indicators_scenario", "tenant_id", "scenario_id"),
)

notifications = Table(
    "notifications", metadata,
    Column("tenant_id", Text), Column("event_id", Uuid), Column("position", BigInteger,
                                                              nullable=False),
    Column("kind", Text, nullable=False), Column("subject_id", Uuid, nullable=False),
    Column("subject_version", Integer, nullable=False), Column("title", Text, nullable=False),
    Column("details", JSONB, nullable=False), _time("occurred_at", False),
    PrimaryKeyConstraint("tenant_id", "event_id"),
    Index("ix_notifications_position", "tenant_id", "position"),
)

bi_targets = Table(
    "bi_targets", metadata,
    Column("tenant_id", Text), Column("target_id", Uuid), Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False), Column("trigger_url", Text), Column("status_url", Text),
    Column("pending", Boolean, nullable=False), Column("running_build", Integer),
    Column("builds", Integer, nullable=False), Column("started_position", BigInteger,
                                                       nullable=False),
    Column("completed_build", Integer), Column("completed_position", BigInteger, nullable=False),
    Column("last_error", Text), _time("requested_at"), _time("updated_at", False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "target_id"),
)

bi_builds = Table(
    "bi_builds", metadata,
    Column("tenant_id", Text), Column("target_id", Uuid), Column("build", Integer),
    Column("position", BigInteger, nullable=False), Column("status", Text, nullable=False),
    _time("started_at", False), _time("finished_at"), Column("error", Text),
    PrimaryKeyConstraint("tenant_id", "target_id", "build"),
)

tenant_data = Table(
    "tenant_data", metadata,
    Column("tenant_id", Text, primary_key=True), Column("data_position", BigInteger),
    comment="Position of the latest data-changing event per tenant (marks BI targets dirty).",
)

bi_dashboard = Table(
    "bi_dashboard", metadata,
    Column("tenant_id", Text), Column("run_id", Uuid), Column("name", Text),
    Column("scenario_id", Uuid, nullable=False), Column("value", Float, nullable=False),
    Column("unit", Text, nullable=False), Column("build", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "run_id", "name"),
    comment="Built-in BI target output: refreshed by the BI sync manager, not a projection.",
)

merge_requests = Table(
    "merge_requests", metadata,
    Column("tenant_id", Text), Column("request_id", Uuid), Column("title", Text, nullable=False),
    Column("status", Text, nullable=False), Column("author", Text, nullable=False),
    Column("fork_id", Uuid, nullable=False), Column("parent_id", Uuid, nullable=False),
    Column("verdict", Text), Column("edit_count", Integer, nullable=False),
    Column("conflict_count", Integer, nullable=False), Column("merged_version", Integer),
    _time("opened_at", False), _time("updated_at", False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "request_id"),
    Index("ix_merge_requests_updated", "tenant_id", "updated_at"),
)

# -- projector bookkeeping (not tenant data) ------------------------------------------------

projection_tracking = Table(
    "projection_tracking", metadata,
    Column("projection", Text), Column("topic", Text), Column("partition", Integer),
    Column("next_offset", BigInteger, nullable=False), Column("highwater", BigInteger),
    Column("lag", BigInteger, Computed("greatest(highwater - next_offset, 0)")),
    PrimaryKeyConstraint("projection", "topic", "partition"),
    comment="Per projection and partition: the next offset to apply (exactly-once tracking).",
)

projection_versions = Table(
    "projection_versions", metadata,
    Column("projection", Text), Column("aggregate_id", Uuid),
    Column("version", Integer, nullable=False), Column("position", BigInteger, nullable=False),
    PrimaryKeyConstraint("projection", "aggregate_id"),
    comment="Highest aggregate version each projection applied: de-duplication, waits.",
)

projection_errors = Table(
    "projection_errors", metadata,
    Column("projection", Text), Column("topic", Text), Column("partition", Integer),
    Column("offset", BigInteger), Column("tenant_id", Text), Column("aggregate_id", Uuid),
    Column("aggregate_version", Integer), Column("position", BigInteger),
    Column("event_type", Text), Column("error", Text, nullable=False), _time("occurred_at"),
    PrimaryKeyConstraint("projection", "topic", "partition", "offset"),
    Index("ix_projection_errors_tenant", "tenant_id"),
)

projection_status = Table(
    "projection_status", metadata,
    Column("projection", Text, primary_key=True), Column("state", Text, nullable=False),
    Column("last_error", Text), _time("updated_at"),
    comment="Running or stopped (on an error, with the reason) per projection.",
)

READ_MODEL_VIEWS = {
    "run_comparison": """
        SELECT a.tenant_id, a.run_id AS run_a, b.run_id AS run_b, a.name, a.unit,
               a.value AS value_a, b.value AS value_b, b.value - a.value AS difference
        FROM indicators a JOIN indicators b ON a.tenant_id = b.tenant_id AND a.name = b.name""",
    "link_flow_comparison": """
        SELECT a.tenant_id, a.run_id AS run_a, b.run_id AS run_b, a.link_id,
               a.flow AS flow_a, b.flow AS flow_b, b.flow - a.flow AS difference
        FROM link_results a JOIN link_results b
             ON a.tenant_id = b.tenant_id AND a.link_id = b.link_id""",
    "bi_target_status": """
        SELECT t.*, coalesce(d.data_position, 0) AS data_position,
               coalesce(d.data_position, 0) > t.started_position AS dirty
        FROM bi_targets t LEFT JOIN tenant_data d ON d.tenant_id = t.tenant_id""",
}
