"""The Redis broker: a stream per channel as the ordered, retained log, and one pub/sub
"bus" that tells every process of each new entry.

Publishing is one atomic script: XADD (stream entry id = the cursor; MINID trimming keeps the
retention; the key expires when a channel goes quiet for that long) and PUBLISH of
`<channel>\\n<id>\\n<body>` on the bus. Each process holds ONE bus subscription, supervised:
when Redis drops it reconnects with backoff and, for every channel someone in this process
listens to, reads the stream after the last cursor it delivered, so the outage loses nothing
and the overlap with live traffic is dropped by cursor.

While Redis is unreachable, publishes are kept in order in a bounded outbox and written as soon
as it answers again: an event accepted (stored) during the outage is still delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import cast

from redis.exceptions import RedisError, ResponseError

from app.cache.redis import connect
from app.metrics.catalogue import REDIS_ERRORS
from app.realtime.broker import (
    BrokerUnavailable,
    CursorGone,
    Delivered,
    Fanout,
    Subscription,
)
from app.realtime.envelope import Cursor, format_cursor, frame, parse_cursor
from app.tasks import cancel_and_wait, raise_if_cancelling

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 100_000
PAGE = 1000

_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'b', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[4] .. '\\n' .. id .. '\\n' .. ARGV[2])
return id
"""

# Many messages in one round trip (a batch's publishes after its commit), in order: KEYS =
# [bus, key of message 1, key of message 2, ...], ARGV = [min id, retention, then channel and
# body of each message].
_PUBLISH_MANY = """
local ids = {}
for i = 2, #KEYS do
  local body = ARGV[2 * i]
  local id = redis.call('XADD', KEYS[i], 'MINID', '~', ARGV[1], '*', 'b', body)
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
  redis.call('PUBLISH', KEYS[1], ARGV[2 * i - 1] .. '\\n' .. id .. '\\n' .. body)
  ids[#ids + 1] = id
end
return ids
"""

# Messages per script call: bounds how long one call holds Redis.
MANY_CHUNK = 500

_ERRORS = (RedisError, OSError)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBroker:
    name = "redis"

    def __init__(self, url: str, prefix: str, retention_seconds: float) -> None:
        self.client = connect(url)
        # The bus connection blocks on reads; its health is checked by periodic PINGs.
        self._bus_client = connect(url, socket_timeout=None, health_check_interval=5)
        self.prefix = prefix
        self.bus = prefix + "rt:bus"
        self.retention_ms = int(retention_seconds * 1000)
        self.fanout = Fanout()
        self._publish = self.client.register_script(_PUBLISH)
        self._publish_many = self.client.register_script(_PUBLISH_MANY)
        self._outbox: deque[tuple[str, str]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self.upstream_ok = asyncio.Event()

    def _key(self, channel: str) -> str:
        return self.prefix + "rt:ch:" + channel

    # lifecycle -------------------------------------------------------------------------
    async def connect(self) -> None:
        self._reader = asyncio.create_task(self._run_upstream(), name="realtime-upstream")

    async def disconnect(self) -> None:
        for task in (self._reader, self._flusher):
            if task is not None:
                await cancel_and_wait(task)
                with contextlib.suppress(asyncio.CancelledError, *_ERRORS):
                    await task
        if self._outbox:
            # One last chance for what is queued; stored events are re-published by nobody
            # else, so say how many were left behind.
            with contextlib.suppress(*_ERRORS):
                await asyncio.wait_for(self._drain_outbox(), 2.0)
            if self._outbox:
                log.error("realtime outbox not flushed at shutdown", extra={"n": len(self._outbox)})
        await self._bus_client.aclose()
        await self.client.aclose()

    # publishing ------------------------------------------------------------------------
    async def _xadd(self, channel: str, body: str) -> str:
        min_id = f"{int(time.time() * 1000) - self.retention_ms}-0"
        result = await self._publish(
            keys=[self._key(channel), self.bus],
            args=[min_id, body, self.retention_ms, channel],
        )
        return _text(result)

    async def publish(self, channel: str, body: str) -> None:
        if not self._outbox:
            try:
                await self._xadd(channel, body)
                return
            except _ERRORS as exc:
                REDIS_ERRORS.inc("publish")
                log.warning("realtime publish deferred: redis unavailable (%s)", type(exc).__name__)
        self._defer(channel, body)

    async def _xadd_many(self, messages: list[tuple[str, str]]) -> None:
        min_id = f"{int(time.time() * 1000) - self.retention_ms}-0"
        args: list[str | int] = [min_id, self.retention_ms]
        for channel, body in messages:
            args += (channel, body)
        await self._publish_many(
            keys=[self.bus, *(self._key(channel) for channel, _ in messages)], args=args
        )

    async def publish_many(self, messages: Sequence[tuple[str, str]]) -> None:
        if not messages:
            return
        if len(messages) == 1:
            await self.publish(*messages[0])
            return
        rest = list(messages)
        if not self._outbox:
            try:
                while rest:
                    await self._xadd_many(rest[:MANY_CHUNK])
                    del rest[:MANY_CHUNK]
                return
            except _ERRORS as exc:
                REDIS_ERRORS.inc("publish")
                # As for one message: what was not confirmed waits in the outbox, in order.
                log.warning("realtime publish deferred: redis unavailable (%s)", type(exc).__name__)
        for channel, body in rest:
            self._defer(channel, body)

    def _defer(self, channel: str, body: str) -> None:
        if len(self._outbox) >= OUTBOX_LIMIT:
            self._outbox.popleft()
            log.error("realtime outbox full: oldest message dropped")
        self._outbox.append((channel, body))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_forever(), name="realtime-outbox")

    async def _drain_outbox(self) -> None:
        while self._outbox:
            channel, body = self._outbox[0]
            await self._xadd(channel, body)
            self._outbox.popleft()

    async def _flush_forever(self) -> None:
        delay = 0.05
        while self._outbox:
            try:
                await self._drain_outbox()
            except _ERRORS:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        log.info("realtime outbox flushed")

    # reading ---------------------------------------------------------------------------
    async def subscribe(self, channel: str, maxsize: int) -> Subscription:
        sub = Subscription(self.fanout, channel, maxsize)
        new = channel not in self.fanout.feeds
        feed = self.fanout.add(sub)
        try:
            sub.baseline = await self.tail(channel)
        except BrokerUnavailable:
            sub.close()
            raise
        if new:
            # Anything up to the tail is history (read with read_after); live starts after it.
            feed.last = max(feed.last, sub.baseline)
        return sub

    async def tail(self, channel: str) -> Cursor:
        try:
            entries = await self.client.xrevrange(self._key(channel), "+", "-", count=1)
        except _ERRORS as exc:
            raise BrokerUnavailable(type(exc).__name__) from exc
        if not entries:
            return (0, 0)
        return parse_cursor(_text(entries[0][0]))

    async def _range(self, key: str, after: Cursor) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        start = "(" + format_cursor(after) if after != (0, 0) else "-"
        while True:
            entries = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                await self.client.xrange(key, start, "+", count=PAGE),
            )
            for entry_id, fields in entries:
                out.append((_text(entry_id), _text(fields[b"b"])))
            if len(entries) < PAGE:
                return out
            start = "(" + out[-1][0]

    async def read_after(self, channel: str, cursor: Cursor) -> list[Delivered]:
        key = self._key(channel)
        try:
            if cursor == (0, 0):
                try:
                    info: dict[str, object] = await self.client.xinfo_stream(key)
                except ResponseError:  # no such key: nothing was ever published, or expired
                    return []
                deleted = _text(info.get("max-deleted-entry-id", "0-0"))
                if deleted != "0-0":
                    raise CursorGone("the beginning of this channel is no longer retained")
            else:
                found = await self.client.xrange(
                    key, format_cursor(cursor), format_cursor(cursor), count=1
                )
                if not found:
                    raise CursorGone("cursor unknown or no longer retained")
            entries = await self._range(key, cursor)
        except _ERRORS as exc:
            raise BrokerUnavailable(type(exc).__name__) from exc
        return [Delivered(parse_cursor(i), frame(i, b)) for i, b in entries]

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except _ERRORS as exc:
            raise BrokerUnavailable(type(exc).__name__) from exc

    # the upstream subscription -----------------------------------------------------------
    def _deliver(self, data: object) -> None:
        channel, _, rest = _text(data).partition("\n")
        cursor, _, body = rest.partition("\n")
        try:
            self.fanout.dispatch(channel, cursor, body)
        except ValueError:  # not ours (someone else publishing on the bus): never fatal
            log.warning("realtime bus message ignored: not a cursor")

    async def _replay(self) -> None:
        """After (re)subscribing: whatever the bus did not bring while we were away."""
        for channel, feed in self.fanout.channels():
            for entry_id, body in await self._range(self._key(channel), feed.last):
                self.fanout.dispatch(channel, entry_id, body)

    async def _run_upstream(self) -> None:
        delay = 0.05
        while True:
            pubsub = self._bus_client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.bus)
                await self._replay()
                if delay > 0.05:
                    log.info("realtime upstream reconnected; replayed from last cursors")
                self.upstream_ok.set()
                delay = 0.05
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message["data"])
            except _ERRORS as exc:
                self.upstream_ok.clear()
                raise_if_cancelling()  # stopping, not Redis lost
                REDIS_ERRORS.inc("upstream")
                log.warning("realtime upstream lost (%s); reconnecting", type(exc).__name__)
            finally:
                with contextlib.suppress(*_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
