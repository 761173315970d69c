"""Claim-check blob store in PostgreSQL (an object store can replace it behind the port)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert

from adapters.tables import blobs
from domain.ports import BlobNotFound


class BlobTooLarge(ValueError):
    """The blob exceeds the configured maximum size."""


class PostgresBlobStore:
    """Content-addressed, per-tenant blobs in the `blobs` table."""

    def __init__(self, engine: Engine, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.engine = engine
        self.max_bytes = max_bytes

    def put(self, tenant_id: str, content: bytes) -> str:
        """Store the bytes once under their sha256; return the hex digest."""
        if len(content) > self.max_bytes:
            raise BlobTooLarge(f"blob of {len(content)} bytes exceeds {self.max_bytes}")
        sha256 = hashlib.sha256(content).hexdigest()
        statement = insert(blobs).values(
            tenant_id=tenant_id, sha256=sha256, size=len(content), content=content
        ).on_conflict_do_nothing(index_elements=["tenant_id", "sha256"])
        with self.engine.begin() as connection:
            connection.execute(statement)
        return sha256

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
