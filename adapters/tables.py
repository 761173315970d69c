"""Every SQL table Cartolog owns, in one MetaData (also Alembic's target).

The event store's own table (`cartolog_events`) belongs to eventsourcing_sqlalchemy and
is created by `cartolog db migrate` through the library.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
)

metadata = MetaData()

relay_positions = Table(
    "relay_positions",
    metadata,
    Column("name", Text, primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="Last notification id whose event the broker acknowledged, per relay.",
)

blobs = Table(
    "blobs",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant_id", "sha256"),
    comment="Content-addressed claim-check blobs (key: sha256 of content), per tenant.",
)
import adapters.jobs_tables  # noqa: E402, F401  (simulation job tables)
from adapters import readmodel as _readmodel  # noqa: E402,F401  (read-model tables)
