"""Fair job release: the worker registry, and when each sent job was consumed.

Revision ID: 0310
Revises: 0003

Jobs are released to Kafka only as workers free up (decision 0310). A job row is in flight
from `published_at` until `consumed_at` (its worker committed it, or its run ended); jobs
sent before this revision count as consumed.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0310"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("simulation_job_outbox",
                  sa.Column("consumed_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE simulation_job_outbox SET consumed_at = published_at "
               "WHERE published_at IS NOT NULL")
    op.create_index("simulation_job_outbox_in_flight", "simulation_job_outbox", ["partition"],
                    postgresql_where=sa.text("published_at IS NOT NULL AND consumed_at IS NULL"))
    op.create_table(
        "simulation_workers",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partitions", ARRAY(sa.Integer), nullable=False),
        sa.Column("busy", sa.Boolean, nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("simulation_workers")
    op.drop_index("simulation_job_outbox_in_flight", table_name="simulation_job_outbox")
    op.drop_column("simulation_job_outbox", "consumed_at")
