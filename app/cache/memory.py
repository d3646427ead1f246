from __future__ import annotations

import time
from collections import OrderedDict


class MemoryCache:
    """An in-process LRU with expiry, for the single-process embedded default."""

    name = "in-process"

    def __init__(self, max_entries: int = 100_000) -> None:
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._max = max_entries

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self._live(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        self.set_soon([(key, value)], ttl_seconds)

    async def set_many(
        self, items: list[tuple[str, bytes]], ttl_seconds: float | None = None
    ) -> None:
        self.set_soon(items, ttl_seconds)

    def set_soon(self, items: list[tuple[str, bytes]], ttl_seconds: float | None = None) -> None:
        # In process, a write costs no round trip: done at once.
        expires = time.monotonic() + ttl_seconds if ttl_seconds is not None else None
        for key, value in items:
            self._data[key] = (value, expires)
            self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        current = self._live(key)
        value = int(current or b"0") + 1
        expires = self._data[key][1] if current is not None else None
        if current is None and ttl_seconds is not None:
            expires = time.monotonic() + ttl_seconds
        self._data[key] = (str(value).encode(), expires)
        return value

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()
