"""The Redis broker: a stream per channel as the ordered, retained log, and a pub/sub channel
per channel (its "bus", `<prefix>rt:bus:<channel>`) that tells the processes listening to it of
each new entry.

Publishing is one atomic script: XADD (stream entry id = the cursor; MINID trimming keeps the
retention; the key expires when a channel goes quiet for that long) and PUBLISH of
`<id>\\n<body>` on the channel's bus. Each process holds ONE upstream connection, supervised,
subscribed to the buses of the channels someone in this process listens to and to no other:
a process receives (and parses) only the messages of its own sockets' channels, whatever the
number of processes. The first local listener of a channel SUBSCRIBEs, the last one to leave
UNSUBSCRIBEs. A new listener reads the channel's tail (its baseline) only once Redis has
confirmed the SUBSCRIBE: an entry is then either in the stream at that read or its PUBLISH
reaches the subscription (XADD and PUBLISH are one script), so nothing after the baseline is
missed. When Redis drops, the connection is opened again with backoff, every channel is
subscribed again and, as each SUBSCRIBE is confirmed, its stream is read after the last cursor
delivered here, so the outage loses nothing and the overlap with live traffic is dropped by
cursor. A feed starts at the channel's tail when its first listener arrives, so such a read
never goes back further than that.

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
from collections import deque
from collections.abc import Sequence
from typing import cast

from redis.asyncio.client import PubSub
from redis.asyncio.connection import Connection
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
# How long a new listener waits for Redis to confirm its channel's SUBSCRIBE (a hung Redis:
# the socket is told to try again later, as when the tail cannot be read).
CONFIRM_TIMEOUT = 2.0

# KEYS = [stream]; ARGV = [min id, body, retention, the channel's bus].
_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'b', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], id .. '\\n' .. ARGV[2])
return id
"""

# Many messages in one round trip, in order, each through its call's gate. KEYS = [per
# message: its gate key (calls only) and the stream key of each of its channels]; ARGV = [min
# id, retention, the buses' prefix, then per message: seq ('' outside any call), lenient
# ('1'/'0'), the number of channels, then channel and body of each]. Returns per message 1
# published, 0 duplicate (taken before), -1 blocked (the call's previous message not taken yet).
_PUBLISH_MESSAGES = """
local out = {}
local k, a = 1, 4
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
      redis.call('PUBLISH', ARGV[3] .. ARGV[a], id .. '\\n' .. body)
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
        # The upstream connection blocks on reads; its health is checked by periodic PINGs.
        self._bus_client = connect(url, socket_timeout=None, health_check_interval=5)
        self.prefix = prefix
        self.bus_prefix = prefix + "rt:bus:"
        self.retention_ms = int(retention_seconds * 1000)
        self.fanout = Fanout(on_idle=self._idle)
        self._publish = self.client.register_script(_PUBLISH)
        self._publish_messages = self.client.register_script(_PUBLISH_MESSAGES)
        self._reader: asyncio.Task[None] | None = None
        # Set while the upstream connection is up and every channel's stream has been read
        # after its last cursor since it (re)connected.
        self.upstream_ok = asyncio.Event()
        # Bus messages this process received (each process gets only its channels').
        self.received = 0
        # The upstream connection's state, reset when it is lost. `_reader` reads it (messages,
        # SUBSCRIBE confirmations); `_sync` writes SUBSCRIBE and UNSUBSCRIBE on it.
        self._pubsub: PubSub | None = None
        self._on: set[str] = set()  # channels SUBSCRIBEd on it (not UNSUBSCRIBEd since)
        # Per channel, a future per SUBSCRIBE sent and not confirmed yet, oldest first (Redis
        # confirms each, in order).
        self._replies: dict[str, deque[asyncio.Future[None]]] = {}
        # Channels whose stream is read after their feed's last cursor once their SUBSCRIBE is
        # confirmed: every channel listened to when the connection was (re)opened.
        self._stale: set[str] = set()
        # Channels whose local listening may have started or ended since `_sync` last looked.
        self._changed: set[str] = set()
        self._syncing: asyncio.Task[None] | None = None

    def _key(self, channel: str) -> str:
        return self.prefix + "rt:ch:" + channel

    def _bus(self, channel: str) -> str:
        return self.bus_prefix + channel

    # lifecycle -------------------------------------------------------------------------
    async def connect(self) -> None:
        self._reader = asyncio.create_task(self._run_upstream(), name="realtime-upstream")

    async def disconnect(self) -> None:
        for task in (self._reader, self._syncing):
            if task is not None:
                await cancel_and_wait(task)
                with contextlib.suppress(asyncio.CancelledError, *_ERRORS):
                    await task
        await self._bus_client.aclose()
        await self._reads.aclose()
        await self.client.aclose()

    # publishing ------------------------------------------------------------------------
    async def _xadd(self, channel: str, body: str) -> str:
        min_id = f"{int(time.time() * 1000) - self.retention_ms}-0"
        result = await self._publish(
            keys=[self._key(channel)],
            args=[min_id, body, self.retention_ms, self._bus(channel)],
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
        keys: list[str] = []
        args: list[str | int] = [min_id, self.retention_ms, self.bus_prefix]
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
        floor = (0, 0)
        if channel not in self.fanout.feeds:
            # The first listener here: a feed it creates starts at the tail, so that reading the
            # stream after the feed's last cursor (after a reconnect) never goes further back.
            floor = await self.tail(channel)
        self.fanout.add(sub, floor)
        try:
            await self._listening(channel)
            # Anything up to the tail is history (read with read_after); live starts after it.
            sub.baseline = await self.tail(channel)
        except BaseException:  # BrokerUnavailable, or cancelled: nothing left registered
            sub.close()
            raise
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

    # the upstream connection -------------------------------------------------------------
    async def _listening(self, channel: str) -> None:
        """Return once `channel`'s bus subscription is active: Redis confirmed its SUBSCRIBE on
        the upstream connection. While the connection is down there is nothing to wait for:
        its reopening subscribes every channel listened to and reads each after its feed's
        last cursor."""
        if self._pubsub is None:
            return
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                # Shielded: a listener that goes away must not stop what others wait for.
                await asyncio.shield(self._sync_soon(channel))
                pending = self._replies.get(channel)
                if pending and channel in self._on:
                    await asyncio.shield(pending[-1])  # the SUBSCRIBE that turned it on
        except TimeoutError as exc:
            raise BrokerUnavailable("TimeoutError") from exc

    def _idle(self, channel: str) -> None:
        """The last local subscriber of `channel` has left: unsubscribe (soon, in order)."""
        if self._pubsub is not None:
            self._sync_soon(channel)

    def _sync_soon(self, *channels: str) -> asyncio.Task[None]:
        self._changed.update(channels)
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.create_task(self._sync(), name="realtime-bus-sync")
        return self._syncing

    async def _sync(self) -> None:
        """SUBSCRIBE the buses of the channels listened to here that the upstream connection
        is not subscribed to, UNSUBSCRIBE those no one here listens to any more. One task at a
        time, so the commands go out in the order their confirmations are expected; it
        compares states, so a channel left and listened to again in between is not touched."""
        while self._changed:
            changed, self._changed = self._changed, set()
            pubsub = self._pubsub
            connection = cast("Connection | None", pubsub and pubsub.connection)
            if connection is None or not connection.is_connected:
                return  # lost: the reconnection subscribes every channel listened to then
            feeds = self.fanout.feeds
            start = [c for c in changed if c in feeds and c not in self._on]
            stop = [c for c in changed if c not in feeds and c in self._on]
            # A channel no longer listened to is not waited for.
            self._stale.difference_update(c for c in changed if c not in feeds)
            self._caught_up()
            if not start and not stop:
                continue
            commands: list[tuple[str, ...]] = []
            if start:
                commands.append(("SUBSCRIBE", *map(self._bus, start)))
            if stop:
                commands.append(("UNSUBSCRIBE", *map(self._bus, stop)))
            loop = asyncio.get_running_loop()
            for channel in start:
                self._replies.setdefault(channel, deque()).append(loop.create_future())
            self._on.update(start)
            self._on.difference_update(stop)
            try:
                # Written as the reader waits on the connection, never read here (the reader
                # gets the confirmations); nothing awaits between the checks and the write.
                await connection.send_packed_command(
                    connection.pack_commands(commands), check_health=False
                )
            except _ERRORS:
                # The reader sees the connection fail and opens a new one; if it already has,
                # the loop goes on with that one (`_lost` has reset what was recorded above).
                continue

    def _caught_up(self) -> None:
        if self._pubsub is not None and not self._stale:
            self.upstream_ok.set()

    def _lost(self) -> None:
        """The upstream connection is gone: whoever waits for a confirmation goes on (the
        reconnection subscribes every channel again and reads each after its last cursor)."""
        self._pubsub = None
        self._on = set()
        self._stale = set()
        self._changed = set()
        for pending in self._replies.values():
            for confirmed in pending:
                if not confirmed.done():
                    confirmed.set_result(None)
        self._replies = {}
        self.upstream_ok.clear()

    def _channel(self, bus: object) -> str:
        return _text(bus)[len(self.bus_prefix) :]

    def _deliver(self, channel: str, data: object) -> None:
        cursor, _, body = _text(data).partition("\n")
        try:
            self.fanout.dispatch(channel, cursor, body)
        except ValueError:  # not ours (someone else publishing on the bus): never fatal
            log.warning("realtime bus message ignored: not a cursor")

    async def _replay(self, channel: str) -> None:
        """Whatever the bus did not bring while the connection was away."""
        feed = self.fanout.feeds.get(channel)
        if feed is None:
            return
        for entry_id, body in await self._range(self._key(channel), feed.last):
            self.fanout.dispatch(channel, entry_id, body)

    async def _confirmed(self, channel: str) -> None:
        """Redis confirmed a SUBSCRIBE of `channel`'s bus: its messages arrive from now on."""
        if channel in self._stale:
            # Read before the connection's next message (that channel's live ones follow).
            await self._replay(channel)
            self._stale.discard(channel)
            self._caught_up()
        pending = self._replies.get(channel)
        if pending:
            confirmed = pending.popleft()
            if not pending:
                del self._replies[channel]
            if not confirmed.done():
                confirmed.set_result(None)

    async def _run_upstream(self) -> None:
        delay = 0.05
        while True:
            pubsub = self._bus_client.pubsub()
            try:
                # Connected before any SUBSCRIBE: a read then waits on the socket even when this
                # process listens to no channel (no loop spinning on an idle connection).
                await pubsub.connect()  # type: ignore[no-untyped-call]
                connection = cast("Connection", pubsub.connection)
                self._pubsub = pubsub
                self._stale = set(self.fanout.feeds)
                await asyncio.shield(self._sync_soon(*self._stale))
                self._caught_up()
                if delay > 0.05:
                    log.info("realtime upstream reconnected; replaying from last cursors")
                delay = 0.05
                while True:
                    if not connection.is_connected:
                        # Closed by a failed SUBSCRIBE write: never let redis-py open it again
                        # quietly (subscribed to nothing, and with no replay).
                        raise RedisConnectionError("the upstream connection was closed")
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    kind = message["type"]
                    if kind == "message":
                        self.received += 1
                        self._deliver(self._channel(message["channel"]), message["data"])
                    elif kind == "subscribe":
                        await self._confirmed(self._channel(message["channel"]))
            except _ERRORS as exc:
                raise_if_cancelling()  # stopping, not Redis lost
                REDIS_ERRORS.inc("upstream")
                log.warning("realtime upstream lost (%s); reconnecting", type(exc).__name__)
            except Exception:  # supervised: a listener that dies silently delivers nothing
                raise_if_cancelling()
                REDIS_ERRORS.inc("upstream")
                log.exception("realtime upstream failed; reconnecting")
            finally:
                self._lost()
                with contextlib.suppress(*_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
