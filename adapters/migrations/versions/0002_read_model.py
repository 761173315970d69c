"""Read model: PostGIS tables of the projections, views, projector bookkeeping.

Revision ID: 0002
Revises: 0001

The DDL is frozen here as generated from adapters/readmodel.py at this revision; later
changes to those tables need a new revision.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATEMENTS = [
    """CREATE TABLE tenants (
    tenant_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    registered_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (tenant_id)
)""",
    """CREATE TABLE datasets (
    tenant_id TEXT NOT NULL,
    dataset_id UUID NOT NULL,
    name TEXT NOT NULL,
    network_sha256 TEXT NOT NULL,
    node_count INTEGER,
    link_count INTEGER,
    zone_count INTEGER,
    source_format TEXT,
    imported_at TIMESTAMP WITH TIME ZONE NOT NULL,
    imported_by TEXT,
    PRIMARY KEY (tenant_id, dataset_id)
)""",
    """CREATE TABLE dataset_nodes (
    tenant_id TEXT NOT NULL,
    dataset_id UUID NOT NULL,
    node_id INTEGER NOT NULL,
    geom geometry(POINT,4326),
    PRIMARY KEY (tenant_id, dataset_id, node_id)
)""",
    """CREATE INDEX ix_dataset_nodes_geom ON dataset_nodes USING gist (geom)""",
    """CREATE TABLE dataset_links (
    tenant_id TEXT NOT NULL,
    dataset_id UUID NOT NULL,
    link_id TEXT NOT NULL,
    from_node INTEGER NOT NULL,
    to_node INTEGER NOT NULL,
    capacity FLOAT,
    length FLOAT,
    free_flow_time FLOAT,
    b FLOAT,
    power FLOAT,
    toll FLOAT,
    link_type INTEGER,
    lanes FLOAT,
    geom geometry(LINESTRING,4326),
    PRIMARY KEY (tenant_id, dataset_id, link_id)
)""",
    """CREATE INDEX ix_dataset_links_geom ON dataset_links USING gist (geom)""",
    """CREATE TABLE dataset_zones (
    tenant_id TEXT NOT NULL,
    dataset_id UUID NOT NULL,
    zone_id INTEGER NOT NULL,
    centroid_node INTEGER NOT NULL,
    population FLOAT,
    jobs FLOAT,
    geom geometry(MULTIPOLYGON,4326),
    centroid geometry(POINT,4326),
    PRIMARY KEY (tenant_id, dataset_id, zone_id)
)""",
    """CREATE INDEX ix_dataset_zones_centroid ON dataset_zones USING gist (centroid)""",
    """CREATE INDEX ix_dataset_zones_geom ON dataset_zones USING gist (geom)""",
    """CREATE TABLE scenarios (
    tenant_id TEXT NOT NULL,
    scenario_id UUID NOT NULL,
    dataset_id UUID NOT NULL,
    name TEXT NOT NULL,
    network_sha256 TEXT NOT NULL,
    fork_of UUID,
    fork_version INTEGER,
    version INTEGER NOT NULL,
    archived BOOLEAN NOT NULL,
    archive_reason TEXT,
    trip_rate FLOAT,
    deterrence TEXT,
    beta FLOAT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (tenant_id, scenario_id)
)""",
    """CREATE INDEX ix_scenarios_dataset ON scenarios (tenant_id, dataset_id)""",
    """CREATE TABLE scenario_links (
    tenant_id TEXT NOT NULL,
    scenario_id UUID NOT NULL,
    link_id TEXT NOT NULL,
    from_node INTEGER NOT NULL,
    to_node INTEGER NOT NULL,
    capacity FLOAT,
    length FLOAT,
    free_flow_time FLOAT,
    b FLOAT,
    power FLOAT,
    toll FLOAT,
    link_type INTEGER,
    lanes FLOAT,
    geom geometry(LINESTRING,4326),
    speed FLOAT,
    added BOOLEAN NOT NULL,
    closed BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, scenario_id, link_id)
)""",
    """CREATE INDEX ix_scenario_links_geom ON scenario_links USING gist (geom)""",
    """CREATE TABLE scenario_zones (
    tenant_id TEXT NOT NULL,
    scenario_id UUID NOT NULL,
    zone_id INTEGER NOT NULL,
    centroid_node INTEGER NOT NULL,
    population FLOAT,
    jobs FLOAT,
    geom geometry(MULTIPOLYGON,4326),
    centroid geometry(POINT,4326),
    PRIMARY KEY (tenant_id, scenario_id, zone_id)
)""",
    """CREATE INDEX ix_scenario_zones_centroid ON scenario_zones USING gist (centroid)""",
    """CREATE INDEX ix_scenario_zones_geom ON scenario_zones USING gist (geom)""",
    """CREATE TABLE simulation_runs (
    tenant_id TEXT NOT NULL,
    run_id UUID NOT NULL,
    scenario_id UUID NOT NULL,
    scenario_version INTEGER NOT NULL,
    model TEXT NOT NULL,
    parameters JSONB NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    attempts_allowed INTEGER NOT NULL,
    idempotency_key TEXT,
    worker TEXT,
    last_error TEXT,
    result_sha256 TEXT,
    duration_s FLOAT,
    requested_at TIMESTAMP WITH TIME ZONE NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, run_id)
)""",
    """CREATE INDEX ix_simulation_runs_scenario ON simulation_runs (tenant_id, scenario_id)""",
    """CREATE TABLE link_results (
    tenant_id TEXT NOT NULL,
    run_id UUID NOT NULL,
    link_id TEXT NOT NULL,
    flow FLOAT,
    volume_capacity FLOAT,
    congested_time FLOAT,
    PRIMARY KEY (tenant_id, run_id, link_id)
)""",
    """CREATE TABLE zone_results (
    tenant_id TEXT NOT NULL,
    run_id UUID NOT NULL,
    zone_id INTEGER NOT NULL,
    trips FLOAT,
    jobs_within_threshold FLOAT,
    accessibility FLOAT,
    PRIMARY KEY (tenant_id, run_id, zone_id)
)""",
    """CREATE TABLE indicators (
    tenant_id TEXT NOT NULL,
    run_id UUID NOT NULL,
    name TEXT NOT NULL,
    scenario_id UUID NOT NULL,
    value FLOAT NOT NULL,
    unit TEXT NOT NULL,
    PRIMARY KEY (tenant_id, run_id, name)
)""",
    """CREATE INDEX ix_indicators_scenario ON indicators (tenant_id, scenario_id)""",
    """CREATE TABLE notifications (
    tenant_id TEXT NOT NULL,
    event_id UUID NOT NULL,
    position BIGINT NOT NULL,
    kind TEXT NOT NULL,
    subject_id UUID NOT NULL,
    subject_version INTEGER NOT NULL,
    title TEXT NOT NULL,
    details JSONB NOT NULL,
    occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
)""",
    """CREATE INDEX ix_notifications_position ON notifications (tenant_id, position)""",
    """CREATE TABLE bi_targets (
    tenant_id TEXT NOT NULL,
    target_id UUID NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    trigger_url TEXT,
    status_url TEXT,
    pending BOOLEAN NOT NULL,
    running_build INTEGER,
    builds INTEGER NOT NULL,
    started_position BIGINT NOT NULL,
    completed_build INTEGER,
    completed_position BIGINT NOT NULL,
    last_error TEXT,
    requested_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, target_id)
)""",
    """CREATE TABLE bi_builds (
    tenant_id TEXT NOT NULL,
    target_id UUID NOT NULL,
    build INTEGER NOT NULL,
    position BIGINT NOT NULL,
    status TEXT NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    finished_at TIMESTAMP WITH TIME ZONE,
    error TEXT,
    PRIMARY KEY (tenant_id, target_id, build)
)""",
    """CREATE TABLE tenant_data (
    tenant_id TEXT NOT NULL,
    data_position BIGINT,
    PRIMARY KEY (tenant_id)
)""",
    """CREATE TABLE bi_dashboard (
    tenant_id TEXT NOT NULL,
    run_id UUID NOT NULL,
    name TEXT NOT NULL,
    scenario_id UUID NOT NULL,
    value FLOAT NOT NULL,
    unit TEXT NOT NULL,
    build INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, run_id, name)
)""",
    """CREATE TABLE projection_tracking (
    projection TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    highwater BIGINT,
    lag BIGINT GENERATED ALWAYS AS (greatest(highwater - next_offset, 0)) STORED,
    PRIMARY KEY (projection, topic, partition)
)""",
    """CREATE TABLE projection_versions (
    projection TEXT NOT NULL,
    aggregate_id UUID NOT NULL,
    version INTEGER NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (projection, aggregate_id)
)""",
    """CREATE TABLE projection_errors (
    projection TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" BIGINT NOT NULL,
    tenant_id TEXT,
    aggregate_id UUID,
    aggregate_version INTEGER,
    position BIGINT,
    event_type TEXT,
    error TEXT NOT NULL,
    occurred_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (projection, topic, partition, "offset")
)""",
    """CREATE INDEX ix_projection_errors_tenant ON projection_errors (tenant_id)""",
    """CREATE TABLE projection_status (
    projection TEXT NOT NULL,
    state TEXT NOT NULL,
    last_error TEXT,
    updated_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (projection)
)""",
]

VIEWS = {
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
TABLES = [s.split()[2] for s in STATEMENTS if s.startswith("CREATE TABLE")]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    for name, query in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {query}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
