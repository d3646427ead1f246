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

    def set_soon(self, items: list[tuple[str, bytes]], ttl_seconds: float | None = None) -> None:
        """`set_many` off the caller's path: the writes of the next moments go together, in
        one round trip. For values that only save work (a summary the store can rebuild): a
        write lost or late means one more rebuild, never a wrong answer."""
        ...

    async def delete(self, *keys: str) -> None: ...

    async def incr(self, key: str, ttl_seconds: float | None = None) -> int:
        """Add one to the key's count (from 0); `ttl_seconds` sets its expiry when it is new."""
        ...

    async def ping(self) -> None:
        """Raise CacheUnavailable when the backend does not answer."""

    async def close(self) -> None: ...
