"""Simulation jobs: outbox, leases, result reuse.

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0003"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "simulation_job_outbox",
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("run_id", UUID(as_uuid=True), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("partition", sa.Integer),
        sa.Column("offset", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("kind", "run_id", "attempt"),
    )
    op.create_index("simulation_job_outbox_due", "simulation_job_outbox", ["not_before"],
                    postgresql_where=sa.text("published_at IS NULL"))
    op.create_table(
        "simulation_job_leases",
        sa.Column("run_id", UUID(as_uuid=True), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("worker", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", JSONB),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("run_id", "attempt"),
    )
    op.create_table(
        "simulation_result_cache",
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("reuse_key", sa.Text, nullable=False),
        sa.Column("run_id", UUID(as_uuid=True), nullable=False),
        sa.Column("result_sha256", sa.Text, nullable=False),
        sa.Column("indicators", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "reuse_key"),
    )


def downgrade() -> None:
    op.drop_table("simulation_result_cache")
    op.drop_table("simulation_job_leases")
    op.drop_index("simulation_job_outbox_due", table_name="simulation_job_outbox")
    op.drop_table("simulation_job_outbox")
