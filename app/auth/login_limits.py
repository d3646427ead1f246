"""Login attempts: a lockout per address and per account after repeated failures (issue 16).

Failed logins are counted in fixed windows (LOGIN_WINDOW_SECONDS) in the cache, so every
worker sees the same counts when Redis is configured (in-process when embedded). Once an
address, or an account, has LOGIN_MAX_FAILURES failures in the current window, every login
from it (even a right one) gets 429 with `Retry-After` until the window ends: a guesser
cannot learn that a guess was right while locked out.

"Per account" counts failures that name a staff member: a token that belongs to someone but
cannot log in (revoked, expired, their account inactive). Keys hold a hash of the address or
id, never the value itself.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from app.cache import Cache, CacheUnavailable
from app.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoginLimiter:
    cache: Cache
    max_failures: int
    window_seconds: int

    @classmethod
    def from_settings(cls, cache: Cache, settings: Settings) -> LoginLimiter:
        return cls(cache, settings.login_max_failures, settings.login_window_seconds)

    def _window(self) -> tuple[int, float]:
        """The current window's number and the seconds left in it."""
        now = time.time()
        number = int(now // self.window_seconds)
        return number, (number + 1) * self.window_seconds - now

    def _keys(self, address: str | None, staff_id: str | None) -> list[str]:
        number, _ = self._window()
        keys = []
        for kind, value in (("address", address), ("id", staff_id)):
            if value:
                digest = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:32]
                keys.append(f"login-failures:{number}:{kind}:{digest}")
        return keys

    async def retry_after(self, address: str | None, staff_id: str | None = None) -> int | None:
        """Seconds until a locked-out address or account may try again; None: not locked.

        The cache away: not locked (logins keep working; each failure is still audited)."""
        keys = self._keys(address, staff_id)
        if not keys:
            return None
        try:
            counts = await self.cache.get_many(keys)
        except CacheUnavailable:
            log.warning("login limiter unavailable: cache unreachable")
            return None
        if any(int(c or b"0") >= self.max_failures for c in counts):
            return max(1, math.ceil(self._window()[1]))
        return None

    async def failed(self, address: str | None, staff_id: str | None = None) -> None:
        """Count one failed login against the address (and the account it named)."""
        _, left = self._window()
        for key in self._keys(address, staff_id):
            try:
                await self.cache.incr(key, ttl_seconds=left + 1)
            except CacheUnavailable:
                log.warning("login limiter unavailable: cache unreachable")
                return
