"""The Redis broker: a stream per channel as the ordered, retained log, and one pub/sub
"bus" that tells every process of each new entry.

Publishing is one atomic script: XADD (stream entry id = the cursor; MINID trimming keeps the
retention; the key expires when a channel goes quiet for that long) and PUBLISH of
`<channel>\\n<id>\\n<body>` on the bus. Each process holds ONE bus subscription, supervised:
when Redis drops it reconnects with backoff and, for every channel someone in this process
listens to, reads the stream after the last cursor it delivered, so the outage loses nothing
and the overlap with live traffic is dropped by cursor.

A call's messages go through a gate in the same script: `rt:seq:<call id>` holds the number of
the last message taken, and message n is taken only after n-1, never twice (app.realtime.broker).
While Redis is unreachable publishing raises BrokerUnavailable: what was not taken stays in the
outbox table, and the relay sends it once Redis answers (app.realtime.outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import cast

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from app.cache.redis import connect
from app.metrics.catalogue import REDIS_ERRORS
from app.realtime.broker import (
    BrokerUnavailable,
    CursorGone,
    Delivered,
    Fanout,
    Message,
    Subscription,
)
from app.realtime.envelope import Cursor, format_cursor, frame, parse_cursor
from app.tasks import cancel_and_wait, raise_if_cancelling

log = logging.getLogger(__name__)

PAGE = 1000

_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'b', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[4] .. '\\n' .. id .. '\\n' .. ARGV[2])
return id
"""

# Many messages in one round trip, in order, each through its call's gate. KEYS = [bus, then
# per message: its gate key (calls only) and the stream key of each of its channels]; ARGV =
# [min id, retention, then per message: seq ('' outside any call), lenient ('1'/'0'), the number
# of channels, then channel and body of each]. Returns per message 1 published, 0 duplicate
# (taken before), -1 blocked (the call's previous message not taken yet).
_PUBLISH_MESSAGES = """
local out = {}
local k, a = 2, 3
while a <= #ARGV do
  local seq, lenient, n = ARGV[a], ARGV[a + 1] == '1', tonumber(ARGV[a + 2])
  a = a + 3
  local status = 1
  if seq ~= '' then
    local gate = KEYS[k]
    k = k + 1
    local s = tonumber(seq)
    local last = tonumber(redis.call('GET', gate) or '0')
    if s <= last then
      status = 0
    elseif s ~= last + 1 and not lenient then
      status = -1
    else
      redis.call('SET', gate, seq, 'PX', ARGV[2])
    end
  end
  for i = 1, n do
    if status == 1 then
      local body = ARGV[a + 1]
      local id = redis.call('XADD', KEYS[k], 'MINID', '~', ARGV[1], '*', 'b', body)
      redis.call('PEXPIRE', KEYS[k], ARGV[2])
      redis.call('PUBLISH', KEYS[1], ARGV[a] .. '\\n' .. id .. '\\n' .. body)
    end
    k = k + 1
    a = a + 2
  end
  out[#out + 1] = status
end
return out
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
        # Reads are idempotent: after a Redis restart the pool's first command meets a
        # connection the server closed, and one immediate retry on a fresh connection
        # answers it (a socket opened just then is served, not refused with 1013). Writes
        # stay on `client`, never retried blindly.
        self._reads = connect(
            url, retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError]
        )
        # The bus connection blocks on reads; its health is checked by periodic PINGs.
        self._bus_client = connect(url, socket_timeout=None, health_check_interval=5)
        self.prefix = prefix
        self.bus = prefix + "rt:bus"
        self.retention_ms = int(retention_seconds * 1000)
        self.fanout = Fanout()
        self._publish = self.client.register_script(_PUBLISH)
        self._publish_messages = self.client.register_script(_PUBLISH_MESSAGES)
        self._reader: asyncio.Task[None] | None = None
        self.upstream_ok = asyncio.Event()

    def _key(self, channel: str) -> str:
        return self.prefix + "rt:ch:" + channel

    # lifecycle -------------------------------------------------------------------------
    async def connect(self) -> None:
        self._reader = asyncio.create_task(self._run_upstream(), name="realtime-upstream")

    async def disconnect(self) -> None:
        if self._reader is not None:
            await cancel_and_wait(self._reader)
            with contextlib.suppress(asyncio.CancelledError, *_ERRORS):
                await self._reader
        await self._bus_client.aclose()
        await self._reads.aclose()
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
        try:
            await self._xadd(channel, body)
        except _ERRORS as exc:
            REDIS_ERRORS.inc("publish")
            raise BrokerUnavailable(type(exc).__name__) from exc

    def _gate(self, call_id: int) -> str:
        return self.prefix + "rt:seq:" + str(call_id)

    async def _publish_chunk(self, messages: Sequence[Message]) -> list[int]:
        min_id = f"{int(time.time() * 1000) - self.retention_ms}-0"
        keys: list[str] = [self.bus]
        args: list[str | int] = [min_id, self.retention_ms]
        for message in messages:
            seq = ""
            if message.call_id is not None and message.seq is not None:
                keys.append(self._gate(message.call_id))
                seq = str(message.seq)
            args += (seq, "1" if message.lenient else "0", len(message.channels))
            for channel, body in zip(message.channels, message.bodies, strict=True):
                keys.append(self._key(channel))
                args += (channel, body)
        result = await self._publish_messages(keys=keys, args=args)
        return [int(x) for x in result]

    async def publish_messages(self, messages: Sequence[Message]) -> list[int]:
        outcomes: list[int] = []
        try:
            for start in range(0, len(messages), MANY_CHUNK):
                outcomes += await self._publish_chunk(messages[start : start + MANY_CHUNK])
        except _ERRORS as exc:
            REDIS_ERRORS.inc("publish")
            if outcomes:
                # An earlier chunk was taken: report it, the rest counts as blocked (retried).
                return outcomes + [-1] * (len(messages) - len(outcomes))
            raise BrokerUnavailable(type(exc).__name__) from exc
        return outcomes

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
            entries = await self._reads.xrevrange(self._key(channel), "+", "-", count=1)
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
                await self._reads.xrange(key, start, "+", count=PAGE),
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
                    info: dict[str, object] = await self._reads.xinfo_stream(key)
                except ResponseError:  # no such key: nothing was ever published, or expired
                    return []
                deleted = _text(info.get("max-deleted-entry-id", "0-0"))
                if deleted != "0-0":
                    raise CursorGone("the beginning of this channel is no longer retained")
            else:
                found = await self._reads.xrange(
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
            await self._reads.ping()
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
