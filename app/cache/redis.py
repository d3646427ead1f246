from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.cache.base import CacheUnavailable
from app.metrics.catalogue import REDIS_ERRORS
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# `set_soon`: writes of this many seconds go together (at 20 new callers a second, five
# summaries per round trip instead of one each), and at most this many wait (Redis hung:
# the oldest are dropped, as a cache may).
GATHER_SECONDS = 0.25
MAX_WAITING = 10_000


def _unavailable(exc: Exception) -> CacheUnavailable:
    """The error callers handle (counted for `GET /metrics`)."""
    REDIS_ERRORS.inc("cache")
    return CacheUnavailable(str(exc) or type(exc).__name__)


def connect(url: str, **kwargs: Any) -> aioredis.Redis:
    """A client with short timeouts: a hung Redis must not hang the ring -> screen path."""
    options: dict[str, Any] = {  # redis-py's from_url(**kwargs) is typed Any
        "socket_connect_timeout": 1.0,
        "socket_timeout": 2.0,
        "health_check_interval": 15,
        "retry_on_timeout": False,
    }
    options.update(kwargs)
    return aioredis.Redis.from_url(url, **options)


class RedisCache:
    name = "redis"

    def __init__(self, url: str, prefix: str = "fc:") -> None:
        self.client = connect(url)
        self.prefix = prefix
        self._soon: list[tuple[str, bytes, int | None]] = []
        self._writer: asyncio.Task[None] | None = None

    def _k(self, key: str) -> str:
        return self.prefix + "cache:" + key

    async def get(self, key: str) -> bytes | None:
        try:
            value = cast("bytes | None", await self.client.get(self._k(key)))
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return value

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = cast("list[bytes | None]", await self.client.mget([self._k(k) for k in keys]))
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return values

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        try:
            if ttl_seconds is None:
                await self.client.set(self._k(key), value)
            else:
                await self.client.set(self._k(key), value, px=max(1, int(ttl_seconds * 1000)))
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def set_many(
        self, items: list[tuple[str, bytes]], ttl_seconds: float | None = None
    ) -> None:
        """Every SET in one round trip (a pipeline, not a transaction: each key stands alone)."""
        if items:
            await self._set_all(self._entries(items, ttl_seconds))

    def _entries(
        self, items: list[tuple[str, bytes]], ttl_seconds: float | None
    ) -> list[tuple[str, bytes, int | None]]:
        px = None if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        return [(self._k(key), value, px) for key, value in items]

    async def _set_all(self, entries: list[tuple[str, bytes, int | None]]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value, px in entries:
                    pipe.set(key, value, px=px)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    def set_soon(self, items: list[tuple[str, bytes]], ttl_seconds: float | None = None) -> None:
        if not items:
            return
        self._soon.extend(self._entries(items, ttl_seconds))
        if len(self._soon) > MAX_WAITING:
            del self._soon[: len(self._soon) - MAX_WAITING]
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_soon())

    async def _write_soon(self) -> None:
        await asyncio.sleep(GATHER_SECONDS)
        await self._write_waiting()

    async def _write_waiting(self) -> None:
        while self._soon:
            batch, self._soon = self._soon, []
            try:
                await self._set_all(batch)
            except CacheUnavailable:
                # Dropped: each costs one rebuild from the store later, nothing more.
                log.warning("cache writes dropped: redis unavailable",
                            extra={"cache": self.name, "writes": len(batch)})  # fmt: skip
                return

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            await self.client.delete(*[self._k(k) for k in keys])
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        try:
            if ttl_seconds is None:
                return int(await self.client.incr(self._k(key)))
            # One atomic round trip: the key is made with its expiry when missing (an
            # increment keeps the expiry), so no key is ever left counting forever.
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(self._k(key), 0, px=max(1, int(ttl_seconds * 1000)), nx=True)
                pipe.incr(self._k(key))
                _, count = await pipe.execute()
            return int(count)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def close(self) -> None:
        await cancel_and_wait(self._writer)
        try:
            await asyncio.wait_for(self._write_waiting(), 2.0)  # best effort
        except TimeoutError:
            pass
        await self.client.aclose()
