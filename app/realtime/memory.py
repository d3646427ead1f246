"""The in-process broker (embedded default): one process, channels kept in memory.

It cannot cross processes; a deployment with several workers sets REDIS_URL. Messages are
retained for the configured time, and at most MAX_PER_CHANNEL per channel so that a trial
installation cannot grow without bound.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.realtime.broker import (
    PUBLISHED,
    CursorGone,
    Delivered,
    Fanout,
    Gates,
    Message,
    Subscription,
)
from app.realtime.envelope import Cursor, format_cursor, frame

MAX_PER_CHANNEL = 100_000


@dataclass
class _Log:
    cursors: list[Cursor] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    trimmed_at: float = 0.0
    # Whether anything was ever dropped: the cursor 0-0 ("from the beginning") is only
    # honoured while the whole channel is still here.
    trimmed: bool = False


class MemoryBroker:
    name = "in-process"

    def __init__(self, retention_seconds: float) -> None:
        self.retention_ms = int(retention_seconds * 1000)
        self.fanout = Fanout()
        self._logs: dict[str, _Log] = {}
        self._last: Cursor = (0, 0)
        self.gates = Gates()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    def _next_cursor(self) -> Cursor:
        # Same rule as Redis stream ids: milliseconds, then a sequence within the millisecond,
        # never going back even if the clock does.
        now_ms = int(time.time() * 1000)
        last_ms, last_seq = self._last
        self._last = (now_ms, 0) if now_ms > last_ms else (last_ms, last_seq + 1)
        return self._last

    async def publish(self, channel: str, body: str) -> None:
        log = self._logs.get(channel)
        if log is None:
            log = self._logs[channel] = _Log()
        cursor = self._next_cursor()
        log.cursors.append(cursor)
        log.bodies.append(body)
        self._trim(log, cursor[0])
        self.fanout.dispatch(channel, format_cursor(cursor), body)

    async def publish_messages(self, messages: Sequence[Message]) -> list[int]:
        outcomes = []
        for message in messages:
            outcome = self.gates.admit(message)
            if outcome == PUBLISHED:
                for channel, body in zip(message.channels, message.bodies, strict=True):
                    await self.publish(channel, body)
            outcomes.append(outcome)
        return outcomes

    def _trim(self, log: _Log, now_ms: int) -> None:
        excess = len(log.cursors) - MAX_PER_CHANNEL
        if excess > 0:
            del log.cursors[:excess], log.bodies[:excess]
            log.trimmed = True
        if now_ms - log.trimmed_at < 1000:
            return
        log.trimmed_at = now_ms
        cut = bisect_left(log.cursors, (now_ms - self.retention_ms, 0))
        if cut:
            del log.cursors[:cut], log.bodies[:cut]
            log.trimmed = True

    async def subscribe(self, channel: str, maxsize: int) -> Subscription:
        sub = Subscription(self.fanout, channel, maxsize)
        feed = self.fanout.add(sub)
        sub.baseline = await self.tail(channel)
        feed.last = max(feed.last, sub.baseline)
        return sub

    async def read_after(self, channel: str, cursor: Cursor) -> list[Delivered]:
        log = self._logs.get(channel)
        if log is None:
            if cursor == (0, 0):
                return []
            raise CursorGone("nothing retained on this channel")
        self._trim(log, int(time.time() * 1000))
        if cursor == (0, 0):
            if log.trimmed:
                raise CursorGone("the beginning of this channel is no longer retained")
        else:
            at = bisect_left(log.cursors, cursor)
            if at >= len(log.cursors) or log.cursors[at] != cursor:
                raise CursorGone("cursor unknown or no longer retained")
        start = bisect_right(log.cursors, cursor)
        return [
            Delivered(c, frame(format_cursor(c), b))
            for c, b in zip(log.cursors[start:], log.bodies[start:], strict=True)
        ]

    async def tail(self, channel: str) -> Cursor:
        log = self._logs.get(channel)
        if log is None or not log.cursors:
            return (0, 0)
        return log.cursors[-1]

    async def ping(self) -> None:
        return None
