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
from collections.abc import Callable
from types import FrameType

from fastapi import WebSocket

from app.auth.service import Ended
from app.db import store_unavailable
from app.metrics.catalogue import DATABASE_ERRORS, QUEUE_OVERFLOWS, SOCKET_CLOSES, SOCKETS_OPEN
from app.realtime.auth import connection_principal, origin_allowed
from app.realtime.broker import Broker, BrokerUnavailable
from app.realtime.connection import (
    CLOSE_TIMEOUT,
    FORBIDDEN,
    GOING_AWAY,
    GONE,
    INTERNAL_ERROR,
    RECENT_ENDS_SECONDS,
    TOO_SLOW,
    TRY_AGAIN_LATER,
    UNAUTHENTICATED,
    Closed,
    Connection,
    channel_for,
)
from app.realtime.push_audit import PushAudit
from app.resources import Resources

# The server's own signal handler, called once the sockets are closed.
_Forward = Callable[[int, FrameType | None], object]

log = logging.getLogger(__name__)


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
        # Who received which caller's context, for the audit log.
        self.push_audit = PushAudit(resources.sessions)

    async def serve(self, ws: WebSocket, after: str | None) -> None:
        """Admit `ws` (Origin, principal, role) and run it until either side closes."""
        settings = self.resources.settings
        if not origin_allowed(ws, settings):
            await self._refuse(ws, FORBIDDEN, "origin not allowed")
            return
        looked_up_at = asyncio.get_running_loop().time()
        try:
            principal = await connection_principal(ws, self.resources)
        except Exception as error:
            if not store_unavailable(error):
                raise
            # The credential cannot be read right now: the client retries (1013), as a
            # webhook would on 503, instead of a failed handshake.
            DATABASE_ERRORS.inc(type(error).__name__)
            log.warning("socket refused: store unavailable", extra={"error": type(error).__name__})
            await self._refuse(ws, TRY_AGAIN_LATER, "store unavailable")
            return
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
        SOCKETS_OPEN.add(1)
        # Ended while this socket was being admitted (after its credential was read)?
        if any(at >= looked_up_at and e.covers(principal) for at, e in self.recent_ends):
            conn.end("credential ended")
        if principal.credential is not None:
            conn.set_deadline(principal.credential.expires_at)
        tasks: list[asyncio.Task[None]] = []
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
                QUEUE_OVERFLOWS.inc()
                await conn.close(TOO_SLOW, "too slow: queue full")
            for task in tasks:
                if not task.done():
                    continue
                exc = task.exception()
                if exc is not None and not isinstance(exc, Closed):
                    log.error("socket task failed", exc_info=exc)
                    await conn.close(INTERNAL_ERROR, "internal error")
        except (Closed, *GONE):
            if conn.ended is not None:  # ended while saying hello or resuming
                await conn.close(UNAUTHENTICATED, conn.ended)
        finally:
            conn.clear_deadline()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            sub.close()
            self.connections.discard(conn)
            SOCKETS_OPEN.add(-1)
            # The code we closed with; "client": the client closed it or went away.
            SOCKET_CLOSES.inc("client" if conn.close_code is None else str(conn.close_code))

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
        SOCKET_CLOSES.inc(str(code))
        # Accept first: a close code is only visible to the client on an open socket.
        with contextlib.suppress(*GONE):
            await ws.accept()
            await ws.close(code, reason)

    async def shutdown(self) -> None:
        """Close every socket with 1001 so that clients reconnect (elsewhere) and resume."""
        self.closing = True
        await asyncio.gather(
            *(c.close(GOING_AWAY, "server going away") for c in list(self.connections)),
            return_exceptions=True,
        )
        await self.push_audit.close()

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
            if not callable(previous) or not isinstance(
                getattr(previous, "__self__", None), Server
            ):
                continue

            def on_signal(
                signum: int, frame: FrameType | None, previous: _Forward = previous
            ) -> None:
                loop.call_soon_threadsafe(self._close_then, previous, signum, frame)

            signal.signal(sig, on_signal)

    def _close_then(self, forward: _Forward, signum: int, frame: FrameType | None) -> None:
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
