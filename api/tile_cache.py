"""Vector tiles kept in the API process, least recently used first out, bounded in bytes.

Only tiles whose content is fixed by their key are kept: a completed run's results (they
never change) and a scenario's layers at one read-model version (the key holds the version,
so an edit makes new keys and the old tiles age out). Keys hold the tenant: one tenant's
tile is never served to another (docs/decisions/0504).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple
from uuid import UUID


class TileKey(NamedTuple):
    tenant: str
    layer: str
    subject: UUID
    version: int  # the scenario's read-model version; 0 for a run's (immutable) results
    z: int
    x: int
    y: int


class TileCache:
    """A byte-bounded LRU map from TileKey to tile body; thread-safe. 0 bytes keeps none."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._tiles: OrderedDict[TileKey, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: TileKey) -> bytes | None:
        """The kept tile, now the most recently used; None (a miss) when not kept."""
        with self._lock:
            body = self._tiles.get(key)
            if body is None:
                self.misses += 1
                return None
            self._tiles.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: TileKey, body: bytes) -> None:
        """Keep a tile, dropping the least recently used ones beyond the bound. A tile
        larger than a quarter of the bound is not kept: it would evict too much."""
        if len(body) * 4 > self.max_bytes:
            return
        with self._lock:
            old = self._tiles.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self._tiles[key] = body
            self.size += len(body)
            while self.size > self.max_bytes:
                _, dropped = self._tiles.popitem(last=False)
                self.size -= len(dropped)

    def __len__(self) -> int:
        return len(self._tiles)
