"""Fakes of ports, for unit tests of the layer above them only."""

from __future__ import annotations

import hashlib

from domain.ports import BlobNotFound


class InMemoryBlobStore:
    """BlobStore port in a dict."""

    def __init__(self) -> None:
        self.blobs: dict[tuple[str, str], bytes] = {}

    def put(self, tenant_id: str, content: bytes) -> str:
        sha256 = hashlib.sha256(content).hexdigest()
        self.blobs[(tenant_id, sha256)] = content
        return sha256

    def get(self, tenant_id: str, sha256: str) -> bytes:
        try:
            return self.blobs[(tenant_id, sha256)]
        except KeyError:
            raise BlobNotFound(sha256) from None
