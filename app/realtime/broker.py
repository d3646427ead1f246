"""The broker: ordered, retained channels with live subscriptions.

The interface is the small one of encode/broadcaster (connect, disconnect, publish, subscribe)
plus what resuming needs (read after a cursor, the current tail), hardened:

- one upstream connection per process (Redis), subscribed to the channels someone here
  listens to and to no other, supervised: when it drops it reconnects and replays every such
  channel from the last cursor it delivered, so nothing is lost and nothing is delivered twice;
- every local subscriber has a bounded queue; a subscriber that cannot keep up is marked
  overflowed (its socket is closed with 4008 and the client resumes), it never blocks the
  others or the publisher;
- messages are retained for `realtime_retention_seconds` so that a client can resume;
- a call's messages pass a gate (issue 18): each carries the call's own number (`seq`), and the
  broker takes message n of a call only after message n-1, and never twice. Whoever publishes
  (the worker that committed, or the outbox relay of any worker, after a crash or an outage),
  the channels get a call's messages once each, in order. Nothing waits in a process's memory
  for the broker: the rows of `outbox_message` are what is not sent yet (app.realtime.outbox).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.realtime.envelope import Cursor, frame, parse_cursor

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The backend cannot be reached right now (Redis down); the caller may retry."""


class CursorGone(Exception):
    """The cursor is unknown on this channel or older than what is retained: resync."""


@dataclass(frozen=True)
class Message:
    """One logical message for `Broker.publish_messages`: a body per channel (a handler's view
    and the supervisors' of one event differ), published together or not at all."""

    channels: tuple[str, ...]
    bodies: tuple[str, ...]
    call_id: int | None = None  # with `seq`: the gate applies
    seq: int | None = None
    # Take it even if the gate has not seen message seq-1 of the call: only when the store says
    # every earlier message of the call is sent (the gate was lost: Redis restarted empty, or
    # the call was quiet for longer than the retention).
    lenient: bool = False


# What the gate did with each message.
PUBLISHED, DUPLICATE, BLOCKED = 1, 0, -1


class Gates:
    """The gate of the in-process broker: the last message number taken, per call. Bounded
    (oldest calls forgotten first): a forgotten call's next message is blocked until the
    relay, which knows from the store that nothing earlier is unsent, sends it leniently."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    def admit(self, message: Message) -> int:
        if message.call_id is None or message.seq is None:
            return PUBLISHED
        last = self._last.get(message.call_id, 0)
        if message.seq <= last:
            return DUPLICATE
        if message.seq != last + 1 and not message.lenient:
            return BLOCKED
        self._last.pop(message.call_id, None)  # re-inserted last: the most recent call
        self._last[message.call_id] = message.seq
        if len(self._last) > self.LIMIT:
            del self._last[next(iter(self._last))]
        return PUBLISHED


@dataclass(frozen=True)
class Delivered:
    cursor: Cursor
    text: str  # the frame, ready to send


class Subscription:
    """One local listener on one channel: a bounded queue of frames, oldest first."""

    def __init__(self, fanout: Fanout, channel: str, maxsize: int) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[Delivered] = asyncio.Queue(maxsize)
        self.overflowed = asyncio.Event()
        # Called once when the queue overflows (the hub wakes the socket's handler with it):
        # a callback rather than a task per socket waiting on `overflowed`.
        self.on_overflow: Callable[[], None] | None = None
        # The channel's tail when the subscription was registered: what "now" meant.
        self.baseline: Cursor = (0, 0)
        self._fanout = fanout

    def offer(self, item: Delivered) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Never wait on a slow consumer: mark it, its socket closes and resumes later.
            self.overflowed.set()
            if self.on_overflow is not None:
                self.on_overflow()

    def close(self) -> None:
        self._fanout.remove(self)


@dataclass
class Feed:
    """A channel some local subscriber listens to, and the last cursor delivered on it."""

    subscribers: set[Subscription] = field(default_factory=set)
    last: Cursor = (0, 0)


class Fanout:
    """Delivers each message once per local subscriber, in cursor order, dropping repeats."""

    def __init__(self, on_idle: Callable[[str], None] | None = None) -> None:
        self.feeds: dict[str, Feed] = {}
        # Called with a channel when its last local subscriber has left (the Redis broker
        # unsubscribes from it).
        self.on_idle = on_idle

    def add(self, sub: Subscription, last: Cursor = (0, 0)) -> Feed:
        """Register `sub`; a feed this creates starts at `last` (nothing at or before it is
        dispatched)."""
        feed = self.feeds.get(sub.channel)
        if feed is None:
            feed = self.feeds[sub.channel] = Feed(last=last)
        feed.subscribers.add(sub)
        return feed

    def remove(self, sub: Subscription) -> None:
        feed = self.feeds.get(sub.channel)
        if feed is None:
            return
        feed.subscribers.discard(sub)
        if not feed.subscribers:
            del self.feeds[sub.channel]
            if self.on_idle is not None:
                self.on_idle(sub.channel)

    def dispatch(self, channel: str, cursor_text: str, body: str) -> None:
        feed = self.feeds.get(channel)
        if feed is None:
            return
        cursor = parse_cursor(cursor_text)
        if cursor <= feed.last:
            return  # already delivered (a replay after reconnecting overlaps live traffic)
        feed.last = cursor
        item = Delivered(cursor, frame(cursor_text, body))
        for sub in tuple(feed.subscribers):
            sub.offer(item)

    def channels(self) -> Iterable[tuple[str, Feed]]:
        return tuple(self.feeds.items())


class Broker(Protocol):
    """Ordered channels with retention. Channel names are logical (`handler:H1`,
    `supervisors`); backends add `settings.redis_prefix` where keys are shared."""

    name: str

    async def connect(self) -> None:
        """Start the upstream subscription (if any)."""

    async def disconnect(self) -> None: ...

    async def publish(self, channel: str, body: str) -> None:
        """Append `body` (an envelope without id) to `channel`, outside any gate (control
        messages). Raises BrokerUnavailable when the backend cannot be reached."""

    async def publish_messages(self, messages: Sequence[Message]) -> list[int]:
        """Publish `messages` in order, in one round trip where the backend allows, each through
        its call's gate: PUBLISHED, DUPLICATE (taken before: nothing sent) or BLOCKED (the
        call's previous message is not taken yet: nothing sent, try again later), per message.
        Raises BrokerUnavailable when the backend cannot be reached (nothing was taken)."""

    async def subscribe(self, channel: str, maxsize: int) -> Subscription:
        """Register a local listener. Live messages after `baseline` are queued from now."""

    async def read_after(self, channel: str, cursor: Cursor) -> list[Delivered]:
        """Every retained message after `cursor`, in order. Raises CursorGone when `cursor`
        itself is not (or no longer) on the channel."""

    async def tail(self, channel: str) -> Cursor:
        """The channel's last cursor, (0, 0) when empty."""

    async def ping(self) -> None:
        """Raise BrokerUnavailable when the backend does not answer."""
