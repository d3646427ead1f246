"""The cache: one interface, two backends (in-process for the embedded default, Redis).

The cache is never the only copy of anything: every value in it can be rebuilt from the store.
"""

from __future__ import annotations

from app.cache.base import Cache, CacheUnavailable
from app.cache.memory import MemoryCache
from app.cache.redis import RedisCache
from app.config import Settings


def create_cache(settings: Settings) -> Cache:
    if settings.redis_url:
        return RedisCache(settings.redis_url, prefix=settings.redis_prefix)
    return MemoryCache()


__all__ = ["Cache", "CacheUnavailable", "MemoryCache", "RedisCache", "create_cache"]
