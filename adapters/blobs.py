"""Claim-check blob store in PostgreSQL (an object store can replace it behind the port)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.dialects.postgresql import insert

from adapters.tables import blobs
from domain.errors import QuotaExceeded
from domain.ports import BlobNotFound

MIB = 1024 * 1024


class BlobTooLarge(ValueError):
    """The blob exceeds the configured maximum size."""


class PostgresBlobStore:
    """Content-addressed, per-tenant blobs in the `blobs` table. `quota_bytes` (None: no
    limit) bounds what one tenant stores in all, so that no tenant can fill the disk every
    tenant shares (decision 0717); `tenant_quota_mb`, when given, is the operator's figure
    for one tenant in MiB (0: no limit; None: `quota_bytes` applies; decision 0719)."""

    def __init__(self, engine: Engine, max_bytes: int = 256 * MIB,
                 quota_bytes: int | None = None,
                 tenant_quota_mb: Callable[[str], float | None] | None = None) -> None:
        self.engine = engine
        self.max_bytes = max_bytes
        self.quota_bytes = quota_bytes
        self.tenant_quota_mb = tenant_quota_mb

    def quota_of(self, tenant_id: str) -> int | None:
        """The tenant's quota in bytes (None: no limit)."""
        own = self.tenant_quota_mb(tenant_id) if self.tenant_quota_mb is not None else None
        return self.quota_in_force(own)

    def quota_in_force(self, own_mb: float | None) -> int | None:
        """The quota in bytes of a tenant whose own figure is `own_mb` (None: no limit)."""
        if own_mb is None:
            return self.quota_bytes
        return int(own_mb * MIB) if own_mb > 0 else None

    def put(self, tenant_id: str, content: bytes) -> str:
        """Store the bytes once under their sha256; return the hex digest. Bytes the tenant
        already stores cost nothing; new ones past its quota raise QuotaExceeded."""
        if len(content) > self.max_bytes:
            raise BlobTooLarge(f"blob of {len(content)} bytes exceeds {self.max_bytes}")
        sha256 = hashlib.sha256(content).hexdigest()
        statement = insert(blobs).values(
            tenant_id=tenant_id, sha256=sha256, size=len(content), content=content
        ).on_conflict_do_nothing(index_elements=["tenant_id", "sha256"])
        quota = self.quota_of(tenant_id)
        with self.engine.begin() as connection:
            if quota is not None:
                # One tenant's puts in turn, so two cannot both fit the last free bytes.
                connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('cartolog-blobs'),"
                                        " hashtext(:tenant))"), {"tenant": tenant_id})
                if not self._holds(connection, tenant_id, sha256):
                    self._check_quota(connection, tenant_id, len(content), quota)
            connection.execute(statement)
        return sha256

    def used_bytes(self, tenant_id: str) -> int:
        """What the tenant's blobs take, in bytes."""
        with self.engine.connect() as connection:
            return self._used(connection, tenant_id)

    @staticmethod
    def _holds(connection: Any, tenant_id: str, sha256: str) -> bool:
        return connection.execute(select(blobs.c.size).where(
            blobs.c.tenant_id == tenant_id, blobs.c.sha256 == sha256)).first() is not None

    @staticmethod
    def _used(connection: Any, tenant_id: str) -> int:
        return int(connection.execute(select(func.coalesce(func.sum(blobs.c.size), 0)).where(
            blobs.c.tenant_id == tenant_id)).scalar_one())

    def _check_quota(self, connection: Any, tenant_id: str, size: int, quota: int) -> None:
        used = self._used(connection, tenant_id)
        if used + size > quota:
            raise QuotaExceeded(
                f"storing {_mib(size)} more would take this tenant to {_mib(used + size)}, "
                f"past its storage quota of {_mib(quota)} ({_mib(used)} in use); "
                "nothing was stored. The operator sets the quota (cartolog tenant quota)")

    def get(self, tenant_id: str, sha256: str) -> bytes:
        """The bytes stored under `sha256` for this tenant."""
        query = select(blobs.c.content).where(
            blobs.c.tenant_id == tenant_id, blobs.c.sha256 == sha256
        )
        with self.engine.connect() as connection:
            content = connection.execute(query).scalar()
        if content is None:
            raise BlobNotFound(sha256)
        return bytes(content)

    def get_many(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """Several blobs in one query: (tenant id, sha256) → bytes, for those that exist."""
        keys = sorted(set(wanted))
        if not keys:
            return {}
        connection: Any = self.engine.raw_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT b.tenant_id, b.sha256, b.content FROM blobs b JOIN unnest("
                    "%s::text[], %s::text[]) AS w(tenant_id, sha256) "
                    "ON b.tenant_id = w.tenant_id AND b.sha256 = w.sha256",
                    ([t for t, _ in keys], [h for _, h in keys]))
                rows = cursor.fetchall()
            connection.commit()
        finally:
            connection.close()
        return {(t, h): bytes(content) for t, h, content in rows}


def _mib(size: int) -> str:
    return f"{size / MIB:,.2f} MiB"
