"""Closing, on every worker, the sockets whose credential has ended.

Whoever ends credentials (logout, revoking a staff member's tokens, deactivating them) calls
`announce` in the same transaction: after the commit, one control message goes on the
broker's `control:credentials` channel. Every process follows that channel through the
broker (the in-process fan-out, or the one supervised Redis subscription each process already
holds, which also replays what it missed after Redis comes back), and its hub closes the
sockets opened with those credentials with 4001 at once. Session expiry needs no message:
each socket opened with a session cookie has its own deadline (app.realtime.hub).

Safety net: a control message can still be lost (published by a tool while Redis was away
and its outbox gave up, a worker that subscribed late, a credential ended by hand in the
database). So each process also re-checks the credentials of all its sockets every
WS_AUTH_RECHECK_SECONDS (60 s by default), in a few batched queries for the whole process
rather than one per socket or per frame, and closes the sockets whose credential is no
longer live. The same pass records sessions past their lifetime as ended (`expired`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import sessions
from app.auth.models import EndReason
from app.auth.service import Ended
from app.config import Settings
from app.db import unit_of_work
from app.realtime import create_broker, outbox
from app.realtime.broker import (
    BrokerUnavailable,
    Subscription,
)
from app.realtime.envelope import encode_body
from app.realtime.hub import Hub
from app.resources import Resources
from app.tasks import cancel_and_wait, raise_if_cancelling

log = logging.getLogger(__name__)

# Not a channel any socket can be given (those are `handler:<id>` and `supervisors`).
CHANNEL = "control:credentials"
MESSAGE_TYPE = "credentials.ended"
# Control messages are rare and handled without awaiting anything: this never fills unless
# the process is stalled, and then the recheck that follows an overflow covers the loss.
QUEUE_SIZE = 10_000


def encode(ended: Ended) -> str:
    return encode_body(
        MESSAGE_TYPE,
        None,
        {
            "staff_id": ended.staff_id,
            "reason": ended.reason.value,
            "tokens": list(ended.token_ids),
            "sessions": list(ended.session_ids),
            "everything": ended.everything,
        },
    )


def decode(text: str) -> Ended | None:
    """The `Ended` of a control frame, or None for anything else (never raises)."""
    try:
        message = json.loads(text)
        data: dict[str, object] = message["data"]
        if message.get("type") != MESSAGE_TYPE or not isinstance(data, dict):
            return None
        tokens, session_ids = data.get("tokens", []), data.get("sessions", [])
        if not isinstance(tokens, list) or not isinstance(session_ids, list):
            return None
        return Ended(
            staff_id=str(data["staff_id"]),
            reason=EndReason(str(data["reason"])),
            token_ids=tuple(int(t) for t in tokens),
            session_ids=tuple(str(s) for s in session_ids),
            everything=bool(data.get("everything", False)),
        )
    except (ValueError, TypeError, KeyError):
        return None


def _worth_announcing(ended: Ended) -> bool:
    return bool(ended.token_ids or ended.session_ids or ended.everything)


def announce(session: AsyncSession, resources: Resources, ended: Ended | None) -> None:
    """Queue the control message for `ended` to go out once `session` has committed."""
    if ended is None or not _worth_announcing(ended):
        return
    outbox.stage_body(session, resources, CHANNEL, encode(ended))


async def announce_from_tool(settings: Settings, ended: Ended) -> bool:
    """For the command line (another process than the service): publish the control message
    through Redis. Without REDIS_URL the service's broker is out of reach (False): its
    periodic recheck closes the sockets instead, as it does when Redis is away (False)."""
    if not settings.redis_url or not _worth_announcing(ended):
        return False
    broker = create_broker(settings)
    try:
        await broker.publish(CHANNEL, encode(ended))
    except BrokerUnavailable:
        return False
    finally:
        await broker.disconnect()
    return True


class CredentialWatch:
    """This process's follower of the control channel, and its periodic recheck."""

    def __init__(self, hub: Hub, resources: Resources) -> None:
        self.hub = hub
        self.broker = hub.broker
        self.resources = resources
        self.period = resources.settings.ws_auth_recheck_seconds
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._follow(), name="credentials-follow"),
            asyncio.create_task(self._recheck_forever(), name="credentials-recheck"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _subscribe(self) -> Subscription:
        delay = 0.05
        while True:
            try:
                sub = await self.broker.subscribe(CHANNEL, QUEUE_SIZE)
            except BrokerUnavailable:  # Redis away at start: keep trying, the recheck covers
                raise_if_cancelling()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                raise_if_cancelling()
            except asyncio.CancelledError:
                sub.close()
                raise
            return sub

    async def _follow(self) -> None:
        while True:
            sub = await self._subscribe()
            try:
                while not sub.overflowed.is_set():
                    item = await sub.queue.get()
                    ended = decode(item.text)
                    if ended is None:
                        log.warning("control message ignored: not a credentials message")
                        continue
                    closed = self.hub.end_covered(ended)
                    log.info(
                        "credentials ended",
                        extra={
                            "staff_id": ended.staff_id,
                            "reason": ended.reason.value,
                            "sockets": closed,
                        },
                    )
            finally:
                sub.close()
            # Messages were dropped: look at every socket's credential now, then follow again.
            await self.recheck()

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            await self.recheck()

    async def recheck(self) -> int:
        """Close the sockets whose credential is no longer live; mark expired sessions.
        Never raises (a failed pass is logged and the next one tries again)."""
        closed = 0
        try:
            closed = await self._close_dead()
        except Exception:
            log.exception("credential recheck failed")
        try:
            async with unit_of_work(self.resources.sessions) as session:
                await sessions.end_expired(session)
        except Exception:
            log.exception("marking expired sessions failed")
        return closed

    async def _close_dead(self) -> int:
        connections = [
            c
            for c in list(self.hub.connections)
            if c.ended is None and c.principal.credential is not None
        ]
        if not connections:
            return 0
        credentials = {c.principal.credential for c in connections if c.principal.credential}
        async with self.resources.sessions() as session:
            live = await sessions.live(session, credentials)
        closed = 0
        for conn in connections:
            if conn.principal.credential not in live:
                conn.end("credential no longer valid")
                closed += 1
        if closed:
            log.info("sockets closed by the credential recheck", extra={"sockets": closed})
        return closed
