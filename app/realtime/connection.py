"""One admitted socket and its four tasks (pump, reader, heartbeat, overflow watch); the close
codes it and the hub use (app.realtime.hub admits sockets and closes them all on shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import WebSocket
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocketDisconnect

from app import bounds
from app.auth import policy, sessions
from app.auth.policy import Capability
from app.auth.service import Principal
from app.db import pop_after_commit, utcnow
from app.errors import AppError
from app.realtime import acks
from app.realtime.broker import BrokerUnavailable, CursorGone, Subscription
from app.realtime.envelope import (
    SUPERVISORS,
    BadCursor,
    Cursor,
    control,
    format_cursor,
    handler_channel,
    parse_cursor,
)
from app.realtime.state import open_calls

if TYPE_CHECKING:  # types only: the hub imports this module
    from app.realtime.hub import Hub

log = logging.getLogger(__name__)

GOING_AWAY = 1001
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013
UNAUTHENTICATED = 4001
FORBIDDEN = 4003
TOO_SLOW = 4008
BAD_MESSAGES = 4400

# Invalid client messages tolerated (each answered with an `error`) before closing with 4400.
MAX_BAD_MESSAGES = 20
# Closing a socket whose client stopped reading cannot wait for its buffers to drain.
CLOSE_TIMEOUT = 1.0
# How long the hub remembers ended credentials, for sockets whose admission was under way
# (credential read, not yet registered) when the news arrived.
RECENT_ENDS_SECONDS = 30.0

GONE = (WebSocketDisconnect, RuntimeError, OSError)


class Closed(Exception):
    """The socket is closed or closing: unwind the task."""


def channel_for(principal: Principal) -> str | None:
    """Every call for those who watch the board, their own calls for a handler at a desk,
    nothing for the others (closed with 4003)."""
    if policy.allows(principal, Capability.watch_board):
        return SUPERVISORS
    if policy.allows(principal, Capability.desk):
        return handler_channel(principal.id)
    return None


class Connection:
    def __init__(
        self, hub: Hub, ws: WebSocket, principal: Principal, channel: str, sub: Subscription
    ) -> None:
        self.hub = hub
        self.ws = ws
        self.principal = principal
        self.channel = channel
        self.sub = sub
        self.settings = hub.resources.settings
        self.lock = asyncio.Lock()  # one writer of channel messages at a time (order, dedupe)
        self.last: Cursor = sub.baseline
        self.close_code: int | None = None
        self.finished = asyncio.Event()
        self.bad_messages = 0
        self.last_heard = asyncio.get_running_loop().time()
        # Set when the credential that opened the socket ends: nothing more is sent or
        # accepted, and `Hub.serve` closes it with 4001.
        self.ended: str | None = None
        self._deadline: asyncio.TimerHandle | None = None

    # the credential --------------------------------------------------------------------
    def end(self, reason: str) -> None:
        """The socket's credential has ended: stop at once, close with 4001."""
        if self.ended is None:
            self.ended = reason
            self.finished.set()

    def set_deadline(self, expires_at: datetime | None) -> None:
        """A session's socket closes when the session expires (a timer, not a check per frame)."""
        if expires_at is None:
            return
        delay = max((expires_at - utcnow()).total_seconds(), 0.0)
        self._deadline = asyncio.get_running_loop().call_later(delay, self.end, "session expired")

    def clear_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    async def still_valid(self, session: AsyncSession) -> bool:
        """Whether the socket's credential is live in the store (before an ack or a resync:
        the control message that ends it may not have arrived yet)."""
        if self.ended is not None:
            return False
        credential = self.principal.credential
        if credential is None:
            return True
        if credential in await sessions.live(session, [credential]):
            return True
        self.end("credential no longer valid")
        return False

    # sending ---------------------------------------------------------------------------
    async def send(self, text: str) -> None:
        if self.close_code is not None or self.ended is not None:
            raise Closed
        try:
            await asyncio.wait_for(self.ws.send_text(text), self.settings.ws_send_timeout)
        except TimeoutError:
            await self.close(TOO_SLOW, "too slow: a send timed out")
            raise Closed from None
        except GONE:
            self.finished.set()
            raise Closed from None

    async def deliver(self, text: str) -> None:
        """Send a channel message (or a resync); what it showed of whom goes to the audit."""
        await self.send(text)
        self.hub.push_audit.delivered(self.principal.actor, text)

    async def close(self, code: int, reason: str = "") -> None:
        if self.close_code is not None:
            return
        self.close_code = code
        self.finished.set()
        with contextlib.suppress(TimeoutError, *GONE):
            await asyncio.wait_for(self.ws.close(code, reason), CLOSE_TIMEOUT)

    async def error(self, code: str, message: str, **details: object) -> None:
        await self.send(control("error", {"code": code, "message": message, "details": details}))

    # the stream ------------------------------------------------------------------------
    async def open(self, after: str | None) -> None:
        hello = {
            "staff_id": self.principal.id,
            "role": self.principal.role.value,
            "channel": self.channel,
            "heartbeat_seconds": self.settings.ws_heartbeat_seconds,
            "idle_timeout_seconds": self.settings.ws_idle_timeout,
            "resumed": after is not None,
        }
        if after is None:
            await self.send(control("hello", hello, format_cursor(self.sub.baseline)))
        else:
            await self.send(control("hello", hello))
            await self.resume(after)

    async def resume(self, after: str) -> None:
        """Everything after `after`, in order, then live (the pump skips what this sent)."""
        async with self.lock:
            try:
                cursor = parse_cursor(after)
                missed = await self.hub.broker.read_after(self.channel, cursor)
            except (BadCursor, CursorGone) as exc:
                await self._resync(
                    "unknown_cursor" if isinstance(exc, BadCursor) else "cursor_expired"
                )
                return
            except BrokerUnavailable:
                await self.close(TRY_AGAIN_LATER, "broker unavailable")
                raise Closed from None
            self.last = cursor
            for item in missed:
                await self.deliver(item.text)
                self.last = item.cursor

    async def _resync(self, reason: str) -> None:
        try:
            tail = await self.hub.broker.tail(self.channel)
        except BrokerUnavailable:
            await self.close(TRY_AGAIN_LATER, "broker unavailable")
            raise Closed from None
        # Read after the tail: whatever was published up to it is committed, so it is in here.
        async with self.hub.resources.sessions() as session:
            if not await self.still_valid(session):
                raise Closed
            calls = await open_calls(session, self.principal)
        await self.deliver(
            control("resync", {"reason": reason, "calls": calls}, format_cursor(tail))
        )
        self.last = tail

    async def pump(self) -> None:
        queue = self.sub.queue
        while True:
            item = await queue.get()
            async with self.lock:
                if item.cursor <= self.last:
                    continue
                await self.deliver(item.text)
                self.last = item.cursor

    async def heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        period = min(self.settings.ws_heartbeat_seconds, self.settings.ws_idle_timeout)
        while True:
            await asyncio.sleep(period)
            if loop.time() - self.last_heard > self.settings.ws_idle_timeout:
                await self.close(TOO_SLOW, "idle timeout: no message from the client")
                return
            await self.send(control("ping", {}))

    # client messages -------------------------------------------------------------------
    async def read(self) -> None:
        while True:
            try:
                message = await self.ws.receive()
            except GONE:
                return
            if message["type"] == "websocket.disconnect":
                return
            self.last_heard = asyncio.get_running_loop().time()
            text = message.get("text")
            if text is None:
                await self.bad("binary frames are not accepted; send JSON text")
            elif len(text) > self.settings.ws_max_message:
                await self.close(BAD_MESSAGES, "message too large")
                return
            else:
                await self.handle(text)

    async def bad(self, message: str) -> None:
        self.bad_messages += 1
        if self.bad_messages > MAX_BAD_MESSAGES:
            await self.close(BAD_MESSAGES, "too many bad messages")
            raise Closed
        await self.error("bad_message", message)

    async def handle(self, text: str) -> None:
        try:
            # Bounded: nesting depth, no NUL or lone surrogates, int64 integers (app.bounds).
            message = bounds.loads(text)
        except bounds.Refused as exc:
            await self.bad(exc.problem.msg)
            return
        except ValueError:
            await self.bad("not JSON")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.bad('a message is a JSON object with a "type"')
            return
        kind = message["type"]
        if kind == "pong":
            return
        if kind == "ping":
            await self.send(control("pong", {}))
        elif kind == "resume":
            after = message.get("after")
            if not isinstance(after, str) or len(after) > 64:
                await self.bad('resume needs "after": the last cursor received')
                return
            await self.resume(after)
        elif kind == "ack":
            alert_id = message.get("alert_id")
            if isinstance(alert_id, bool) or not isinstance(alert_id, int) or alert_id < 1:
                await self.bad('ack needs "alert_id": an alert id')
                return
            await self.acknowledge(alert_id)
        else:
            await self.bad("unknown message type")

    async def acknowledge(self, alert_id: int) -> None:
        resources = self.hub.resources
        async with resources.sessions() as session:
            # An ack is a record made in this person's name: refused once their credential
            # has ended, even before the news of it reaches this process.
            if not await self.still_valid(session):
                raise Closed
            try:
                await acks.acknowledge(session, resources, alert_id, self.principal)
                await session.commit()
            except AppError as exc:
                await session.rollback()
                pop_after_commit(session)
                await self.error(exc.code, exc.message, alert_id=alert_id)
                return
            actions = pop_after_commit(session)
        for action in actions:
            try:
                await action()
            except Exception:
                log.exception("after-commit action failed")
