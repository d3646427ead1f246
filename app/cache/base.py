from __future__ import annotations

from typing import Protocol


class CacheUnavailable(Exception):
    """The cache's backend cannot be reached; callers fall back to the store."""


class Cache(Protocol):
    """Byte values with optional expiry. Keys are logical; backends add their own prefix."""

    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...

    async def set_many(
        self, items: list[tuple[str, bytes]], ttl_seconds: float | None = None
    ) -> None: ...

    async def delete(self, *keys: str) -> None: ...

    async def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        """Add one to a counter; a counter started by this call expires after `ttl_seconds`
        (a later call keeps that expiry: a fixed window)."""

    async def ping(self) -> None:
        """Raise CacheUnavailable when the backend does not answer."""

    async def close(self) -> None: ...
