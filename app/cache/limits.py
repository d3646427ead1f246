"""Per-user rate limits counted in the cache, so a limit holds across workers and hosts when
Redis is configured: a window that opens with a user's first use and lasts `window` seconds,
counted with one atomic increment."""

from __future__ import annotations

import logging
import math
import time

from app.cache.base import Cache, CacheUnavailable
from app.errors import TooManyRequests

log = logging.getLogger(__name__)


async def take(cache: Cache, name: str, who: str, per_window: int, window: float = 60.0) -> None:
    """Count one use of `name` by `who`; past `per_window` uses in the window raise
    TooManyRequests with the seconds until the window closes. With the cache down the use is
    let through: the limit guards against trawling the records, and refusing every search
    while Redis restarts would stop handlers identifying callers."""
    key = f"limit:{name}:{who}"
    now = time.time()
    try:
        count = await cache.incr(key, ttl_seconds=window)
        if count == 1:
            await cache.set(key + ":opened", repr(now).encode(), ttl_seconds=window)
            return
        if count <= per_window:
            return
        opened = await cache.get(key + ":opened")
    except CacheUnavailable:
        log.warning("rate limit not counted: cache unavailable", extra={"limit": name})
        return
    start = float(opened) if opened else now
    raise TooManyRequests(
        f"more than {per_window} {name} requests in {window:g} seconds; try again shortly",
        retry_after=math.ceil(start + window - now),
        details={"limit": per_window, "window_seconds": window},
    )
