"""The connection hub: admits sockets, runs each one, closes them all on shutdown.

One socket = one channel (`handler:<id>` for a handler, `supervisors` for supervisors and
admins) and four small tasks: the pump (its subscription's bounded queue -> the socket, in
cursor order, never twice), the reader (client messages), the heartbeat (`ping` frames; a
client that says nothing for WS_IDLE_TIMEOUT is closed) and the overflow watch. A socket never
holds a database session; acknowledgements and resyncs open one for their own duration.

Close codes (documented in README.md):
    1001 going away (server shutting down: reconnect, to another worker if need be)
    1009 frame larger than WS_MAX_MESSAGE (from the server before the app sees it)
    1011 internal error        1013 try again later (the broker is unreachable)
    4001 not authenticated, or the credential that opened the socket has ended since (logout,
         session expiry, tokens revoked, account deactivated: see app.realtime.revocation)
    4003 forbidden (role without a channel, or Origin not allowed)
    4008 too slow (queue full, a send timed out, or no message within WS_IDLE_TIMEOUT)
    4400 bad messages (too many invalid client messages, or a frame over WS_MAX_MESSAGE)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import deque
from datetime import datetime
from types import FrameType
from typing import Any

from fastapi import WebSocket
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocketDisconnect

from app import bounds
from app.auth import policy, sessions
from app.auth.policy import Capability
from app.auth.service import Ended, Principal
from app.db import pop_after_commit, utcnow
from app.errors import AppError
from app.realtime import acks
from app.realtime.auth import connection_principal, origin_allowed
from app.realtime.broker import Broker, BrokerUnavailable, CursorGone, Subscription
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
from app.resources import Resources

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

_GONE = (WebSocketDisconnect, RuntimeError, OSError)


class _Closed(Exception):
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
            raise _Closed
        try:
            await asyncio.wait_for(self.ws.send_text(text), self.settings.ws_send_timeout)
        except TimeoutError:
            await self.close(TOO_SLOW, "too slow: a send timed out")
            raise _Closed from None
        except _GONE:
            self.finished.set()
            raise _Closed from None

    async def close(self, code: int, reason: str = "") -> None:
        if self.close_code is not None:
            return
        self.close_code = code
        self.finished.set()
        with contextlib.suppress(TimeoutError, *_GONE):
            await asyncio.wait_for(self.ws.close(code, reason), CLOSE_TIMEOUT)

    async def error(self, code: str, message: str, **details: Any) -> None:
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
                raise _Closed from None
            self.last = cursor
            for item in missed:
                await self.send(item.text)
                self.last = item.cursor

    async def _resync(self, reason: str) -> None:
        try:
            tail = await self.hub.broker.tail(self.channel)
        except BrokerUnavailable:
            await self.close(TRY_AGAIN_LATER, "broker unavailable")
            raise _Closed from None
        # Read after the tail: whatever was published up to it is committed, so it is in here.
        async with self.hub.resources.sessions() as session:
            if not await self.still_valid(session):
                raise _Closed
            calls = await open_calls(session, self.principal)
        await self.send(control("resync", {"reason": reason, "calls": calls}, format_cursor(tail)))
        self.last = tail

    async def pump(self) -> None:
        queue = self.sub.queue
        while True:
            item = await queue.get()
            async with self.lock:
                if item.cursor <= self.last:
                    continue
                await self.send(item.text)
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
            except _GONE:
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
            raise _Closed
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
                raise _Closed
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


class Hub:
    """Every socket of this process; built by the lifespan with the broker."""

    def __init__(self, broker: Broker, resources: Resources) -> None:
        self.broker = broker
        self.resources = resources
        self.connections: set[Connection] = set()
        self.closing = False
        # (loop time received, what ended): see RECENT_ENDS_SECONDS.
        self.recent_ends: deque[tuple[float, Ended]] = deque()
        self._shutdown: asyncio.Task[None] | None = None
        self._forward: asyncio.Task[None] | None = None  # tells uvicorn once sockets are closed

    async def serve(self, ws: WebSocket, after: str | None) -> None:
        """Admit `ws` (Origin, principal, role) and run it until either side closes."""
        settings = self.resources.settings
        if not origin_allowed(ws, settings):
            await self._refuse(ws, FORBIDDEN, "origin not allowed")
            return
        looked_up_at = asyncio.get_running_loop().time()
        principal = await connection_principal(ws, self.resources)
        if principal is None:
            await self._refuse(ws, UNAUTHENTICATED, "not authenticated")
            return
        channel = channel_for(principal)
        if channel is None:
            await self._refuse(ws, FORBIDDEN, "this role has no live channel")
            return
        if self.closing:
            await self._refuse(ws, GOING_AWAY, "server going away")
            return
        try:
            sub = await self.broker.subscribe(channel, settings.ws_queue_size)
        except BrokerUnavailable:
            await self._refuse(ws, TRY_AGAIN_LATER, "broker unavailable")
            return
        conn = Connection(self, ws, principal, channel, sub)
        self.connections.add(conn)
        # Ended while this socket was being admitted (after its credential was read)?
        if any(at >= looked_up_at and e.covers(principal) for at, e in self.recent_ends):
            conn.end("credential ended")
        if principal.credential is not None:
            conn.set_deadline(principal.credential.expires_at)
        tasks: list[asyncio.Task[Any]] = []
        try:
            await ws.accept()
            await conn.open(after)
            # Three tasks per socket; this coroutine waits for the first of: one of them
            # ends, the socket is closed (`finished`), or its queue overflows (callback). Fewer
            # tasks: less memory per idle socket and less for the garbage collector to walk.
            tasks = [
                asyncio.create_task(conn.pump()),
                asyncio.create_task(conn.read()),
                asyncio.create_task(conn.heartbeat()),
            ]
            for task in tasks:
                task.add_done_callback(lambda _task: conn.finished.set())
            sub.on_overflow = conn.finished.set
            if sub.overflowed.is_set():
                conn.finished.set()
            await conn.finished.wait()
            if conn.ended is not None:
                await conn.close(UNAUTHENTICATED, conn.ended)
            if sub.overflowed.is_set():
                await conn.close(TOO_SLOW, "too slow: queue full")
            for task in tasks:
                if not task.done():
                    continue
                exc = task.exception()
                if exc is not None and not isinstance(exc, _Closed):
                    log.error("socket task failed", exc_info=exc)
                    await conn.close(INTERNAL_ERROR, "internal error")
        except (_Closed, *_GONE):
            if conn.ended is not None:  # ended while saying hello or resuming
                await conn.close(UNAUTHENTICATED, conn.ended)
        finally:
            conn.clear_deadline()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            sub.close()
            self.connections.discard(conn)

    def end_covered(self, ended: Ended) -> int:
        """Close (4001) every socket of this process opened with a credential in `ended`;
        how many. Remembered a while for sockets still being admitted."""
        now = asyncio.get_running_loop().time()
        self.recent_ends.append((now, ended))
        while self.recent_ends and self.recent_ends[0][0] < now - RECENT_ENDS_SECONDS:
            self.recent_ends.popleft()
        reason = f"credential ended: {ended.reason.value}"
        count = 0
        for conn in list(self.connections):
            if conn.ended is None and ended.covers(conn.principal):
                conn.end(reason)
                count += 1
        return count

    async def _refuse(self, ws: WebSocket, code: int, reason: str) -> None:
        # Accept first: a close code is only visible to the client on an open socket.
        with contextlib.suppress(*_GONE):
            await ws.accept()
            await ws.close(code, reason)

    async def shutdown(self) -> None:
        """Close every socket with 1001 so that clients reconnect (elsewhere) and resume."""
        self.closing = True
        await asyncio.gather(
            *(c.close(GOING_AWAY, "server going away") for c in list(self.connections)),
            return_exceptions=True,
        )

    def begin_shutdown(self) -> None:
        if self._shutdown is None:
            self._shutdown = asyncio.get_running_loop().create_task(self.shutdown())

    def install_signal_hook(self) -> None:
        """Under uvicorn, close sockets with 1001 as soon as the stop signal arrives: uvicorn
        itself would close them with 1012 before the lifespan's shutdown runs.

        Uvicorn hears of the signal only once our close frames are out (or CLOSE_TIMEOUT has
        passed): told at once, its next tick could close a socket with 1012 first. A second
        signal (a forced stop) goes through at once."""
        try:
            from uvicorn.server import Server
        except ImportError:  # another server: the lifespan shutdown closes them
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not isinstance(getattr(previous, "__self__", None), Server):
                continue

            def on_signal(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self._close_then, previous, signum, frame)

            signal.signal(sig, on_signal)

    def _close_then(self, forward: Any, signum: int, frame: FrameType | None) -> None:
        if self._shutdown is not None:  # already closing: a repeated signal is the server's
            forward(signum, frame)
            return
        self.begin_shutdown()
        closing = self._shutdown
        assert closing is not None

        async def forward_when_closed() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(closing), CLOSE_TIMEOUT)
            forward(signum, frame)

        self._forward = asyncio.get_running_loop().create_task(forward_when_closed())
