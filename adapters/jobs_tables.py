"""Tables of the simulation job pipeline, on the shared metadata (migration 0003)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from adapters.tables import metadata

job_outbox = Table(
    "simulation_job_outbox",
    metadata,
    Column("kind", Text, nullable=False),  # "job" or "dead_letter"
    Column("run_id", UUID(as_uuid=True), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Column("partition", Integer),
    Column("offset", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("consumed_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("kind", "run_id", "attempt"),
    comment="One row per job (run, attempt) or dead letter: sent once, when due; a sent job "
            "is in flight until consumed.",
)

job_workers = Table(
    "simulation_workers",
    metadata,
    Column("name", Text, primary_key=True),
    Column("topic", Text, nullable=False),
    Column("partitions", ARRAY(Integer), nullable=False),
    Column("busy", Boolean, nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="Live workers: the jobs-topic partitions each holds and whether it is computing.",
)

job_leases = Table(
    "simulation_job_leases",
    metadata,
    Column("run_id", UUID(as_uuid=True), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("worker", Text, nullable=False),
    Column("state", Text, nullable=False),  # "running" or "done"
    Column("lease_until", DateTime(timezone=True), nullable=False),
    Column("result", JSONB),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("run_id", "attempt"),
    comment="Which worker holds a job attempt, until when; the produced result once done.",
)

result_cache = Table(
    "simulation_result_cache",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("reuse_key", Text, nullable=False),
    Column("run_id", UUID(as_uuid=True), nullable=False),
    Column("result_sha256", Text, nullable=False),
    Column("indicators", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant_id", "reuse_key"),
    comment="First completed result per (input hash, model version, parameters), for reuse.",
)
