"""The API's tile cache: bounded in bytes, least recently used out, keys hold the tenant."""

from __future__ import annotations

import uuid

from api.tile_cache import TileCache, TileKey

SUBJECT = uuid.uuid4()


def key(tenant: str = "acme", version: int = 0, x: int = 0) -> TileKey:
    return TileKey(tenant, "links", SUBJECT, version, 3, x, 1)


def test_the_least_recently_used_tile_goes_first_and_the_bound_holds() -> None:
    cache = TileCache(max_bytes=400)
    for x in range(4):
        cache.put(key(x=x), bytes(100))
    assert cache.get(key(x=0)) == bytes(100)  # now the most recently used
    cache.put(key(x=4), bytes(100))
    assert cache.get(key(x=1)) is None and cache.get(key(x=0)) is not None
    assert cache.size == 400 and len(cache) == 4
    cache.put(key(x=4), bytes(50))  # replacing a tile counts its new size only
    assert cache.size == 350


def test_keys_separate_tenants_and_versions_and_big_tiles_are_not_kept() -> None:
    cache = TileCache(max_bytes=1000)
    cache.put(key("acme", version=2), b"acme v2")
    assert cache.get(key("rival", version=2)) is None
    assert cache.get(key("acme", version=3)) is None
    assert cache.get(key("acme", version=2)) == b"acme v2"
    cache.put(key(x=9), bytes(251))  # more than a quarter of the bound
    assert cache.get(key(x=9)) is None
    assert (cache.hits, cache.misses) == (1, 3)
    assert TileCache(0).get(key()) is None and len(TileCache(0)) == 0
