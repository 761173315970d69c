"""Ports the domain needs from the outside, implemented in adapters/."""

from __future__ import annotations

from typing import Protocol


class BlobNotFound(KeyError):
    """No blob with that hash for that tenant."""


class BlobStore(Protocol):
    """Content-addressed storage: the key of a blob is the sha256 of its bytes."""

    def put(self, tenant_id: str, content: bytes) -> str:
        """Store the bytes (idempotent) and return their sha256 hex digest."""
        ...

    def get(self, tenant_id: str, sha256: str) -> bytes:
        """The bytes stored under `sha256` for this tenant; BlobNotFound otherwise."""
        ...
