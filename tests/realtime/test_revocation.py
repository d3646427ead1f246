"""Issue 11, acceptance 4: revoking, deactivating, logging out and session expiry close every
socket opened with the ended credential within 1 s, on every worker, and leave everyone
else's open; the old cookie or token then gets 401 on REST and 4001 on /ws.

Real uvicorn processes and real sockets. On PostgreSQL + Redis (production backend) two
service processes share the store and the broker, and every person has sockets on both; the
action goes to the first. On the embedded backend there is one process (its in-process
broker does not cross processes), so the same checks run against it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, update
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.auth.cookie import COOKIE_NAME
from app.auth.models import ApiToken, Role, StaffSession
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history.models import Alert
from app.main import create_app
from tests.conftest import MakeStaff
from tests.realtime.support import frame, open_socket, ring
from tests.support.servers import ServiceProcess, eventually
from tests.test_auth import run_cli

Live = Callable[..., ServiceProcess]

# The promise: a socket closes within this long of the answer that ended its credential.
LIMIT = 1.0
# The session lifetime in the expiry scenario: long enough to open every socket first.
SHORT_SESSION = 4


async def login(service: ServiceProcess, token: str) -> str:
    """Log in with a staff token on `service`: the session cookie's value."""
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        response = await http.post("/login", data={"token": token}, headers={"Origin": service.url})
    assert response.status_code == 303, response.text
    value = response.cookies.get(COOKIE_NAME)
    assert value
    return value


def cookie_socket(service: ServiceProcess, cookie: str) -> Any:
    """A socket opened as the browser page does: the session cookie, from our own origin."""
    return connect(
        service.ws_url + "/ws",
        additional_headers={"Cookie": f"{COOKIE_NAME}={cookie}"},
        origin=service.url,  # type: ignore[arg-type]
    )


@dataclass
class Watched:
    """An open socket read in the background until it closes: when and with which code."""

    label: str
    ws: ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[tuple[float, int | None]] | None = None
    closed_wall: float | None = None  # time.time() of the close, to compare with the server's

    async def _read(self) -> tuple[float, int | None]:
        try:
            while True:
                message = json.loads(await self.ws.recv())
                if message["type"] == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                self.frames.append(message)
        except ConnectionClosed as closed:
            self.closed_wall = time.time()
            return time.monotonic(), closed.rcvd.code if closed.rcvd else None

    def start(self) -> Watched:
        self.task = asyncio.create_task(self._read())
        return self

    @property
    def open(self) -> bool:
        assert self.task is not None
        return not self.task.done()

    async def closed(self, within: float = 10.0) -> tuple[float, int | None]:
        assert self.task is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self.task), within)
        except TimeoutError:
            raise AssertionError(f"{self.label}: still open after {within} s") from None

    def saw(self, type_: str, call_id: int) -> bool:
        return any(f["type"] == type_ and f["call_id"] == call_id for f in self.frames)


async def watch(stack: contextlib.AsyncExitStack, label: str, opening: Any) -> Watched:
    ws = await stack.enter_async_context(opening)
    hello = await frame(ws)
    assert hello["type"] == "hello", hello
    return Watched(label, ws).start()


async def status(service: ServiceProcess, path: str, *, token: str = "", cookie: str = "") -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if cookie:
        headers["Cookie"] = f"{COOKIE_NAME}={cookie}"
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        return (await http.get(path, headers=headers)).status_code


async def refused_on_ws(
    service: ServiceProcess, *, token: str = "", cookie: str = ""
) -> int | None:
    """The close code /ws answers a credential with (None if it said hello instead)."""
    opening = cookie_socket(service, cookie) if cookie else open_socket(service, token)
    async with opening as ws:
        try:
            got = await frame(ws)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        assert got["type"] != "hello", f"the ended credential was let in: {got}"
    return None


async def session_lifetimes(settings: Settings, staff_id: str) -> list[tuple[datetime, datetime]]:
    """(created_at, expires_at) of each of the staff member's sessions."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            found = await session.execute(
                select(StaffSession.created_at, StaffSession.expires_at).where(
                    StaffSession.staff_id == staff_id
                )
            )
            return [(created, expires) for created, expires in found]
    finally:
        await engine.dispose()


async def ended_rows(settings: Settings, staff_id: str) -> list[tuple[str | None, bool]]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(StaffSession.end_reason, StaffSession.ended_at.is_not(None)).where(
                    StaffSession.staff_id == staff_id
                )
            )
            return [(reason, ended) for reason, ended in rows]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("action", ["revoke", "deactivate", "logout", "expiry"])
async def test_ending_a_credential_closes_its_sockets_on_every_worker(
    action: str, settings: Settings, live_service: Live, make_staff: MakeStaff
) -> None:
    env = {"SESSION_MAX_AGE_SECONDS": str(SHORT_SESSION)} if action == "expiry" else {}
    services = [live_service(**env) for _ in range(2 if settings.redis_url else 1)]
    first = services[0]
    admin = await make_staff("A1", Role.admin)
    h1, h2 = await make_staff("H1", Role.handler), await make_staff("H2", Role.handler)
    h1_call = await ring(first, f"rv-{action}-h1", "H1")

    cookie = await login(first, h1)
    other_cookie = await login(services[-1], h2) if action != "expiry" else ""

    async with contextlib.AsyncExitStack() as stack:
        doomed: list[Watched] = []
        spared: list[Watched] = []
        for n, service in enumerate(services):
            at = f"@service{n}"
            doomed.append(await watch(stack, f"H1 cookie {at}", cookie_socket(service, cookie)))
            h1_token = await watch(stack, f"H1 token {at}", open_socket(service, h1))
            # Logout and expiry end one session; H1's token is another credential.
            (doomed if action in ("revoke", "deactivate") else spared).append(h1_token)
            spared.append(await watch(stack, f"H2 token {at}", open_socket(service, h2)))
            if other_cookie:
                spared.append(
                    await watch(stack, f"H2 cookie {at}", cookie_socket(service, other_cookie))
                )
        assert await status(first, f"/web/api/calls/{h1_call}/screen", cookie=cookie) == 200

        async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
            if action in ("revoke", "deactivate"):
                response = await http.post(
                    "/api/v1/staff/H1/revoke",
                    params={"deactivate": "true"} if action == "deactivate" else {},
                    headers={"Authorization": f"Bearer {admin}"},
                )
                assert response.status_code == 200, response.text
                assert response.json()["active"] is (action != "deactivate")
                reference = time.monotonic()
            elif action == "logout":
                response = await http.post(
                    "/logout",
                    headers={"Origin": first.url, "Cookie": f"{COOKIE_NAME}={cookie}"},
                )
                assert response.status_code == 303, response.text
                reference = time.monotonic()
            else:
                reference = 0.0  # expiry: no request; measured from the row's expiry below

        closes = {w.label: await w.closed(within=SHORT_SESSION + 10) for w in doomed}
        delays = {label: at - reference for label, (at, _code) in closes.items()}
        if action == "expiry":
            # Measured from the session's end as its row says (server clock, same machine).
            [(created_at, expires_at)] = await session_lifetimes(settings, "H1")
            assert (expires_at - created_at).total_seconds() == SHORT_SESSION
            delays = {w.label: (w.closed_wall or 0) - expires_at.timestamp() for w in doomed}
            assert min(delays.values()) >= -0.05, delays  # not before the session's end
        print(
            f"\n{action}: {len(services)} process(es), sockets closed after "
            + ", ".join(f"{label} {delay * 1000:.0f} ms" for label, delay in delays.items())
        )
        assert {label: code for label, (_at, code) in closes.items()} == {
            w.label: 4001 for w in doomed
        }
        assert max(delays.values()) <= LIMIT, delays

        # Everyone else's sockets are open and still receive their calls.
        assert all(w.open for w in spared), [w.label for w in spared if not w.open]
        calls = {"H2": await ring(first, f"rv-{action}-h2", "H2")}
        if action in ("logout", "expiry"):
            calls["H1"] = await ring(first, f"rv-{action}-h1b", "H1")
        for w in spared:
            call_id = calls[w.label[:2]]

            async def arrived(w: Watched = w, call_id: int = call_id) -> bool:
                return w.saw("call.ringing", call_id)

            await eventually(arrived, within=10, what=f"{w.label} gets call.ringing")
        assert all(w.open for w in spared)

    # The ended credential is refused everywhere, on every process.
    ended_credentials: list[dict[str, str]] = [{"cookie": cookie}]
    if action in ("revoke", "deactivate"):
        ended_credentials.append({"token": h1})
    for service in services:
        for credential in ended_credentials:
            for path in (
                "/api/v1/me",
                f"/web/api/calls/{h1_call}/screen",
                "/web/api/handler/calls",
            ):
                assert await status(service, path, **credential) == 401, (path, credential)
            assert await refused_on_ws(service, **credential) == 4001, credential
        # ... and only it.
        assert await status(service, "/api/v1/me", token=h2) == 200
        if other_cookie:
            assert await status(service, "/api/v1/me", cookie=other_cookie) == 200
        if action in ("logout", "expiry"):
            assert await status(service, f"/web/api/calls/{h1_call}/screen", token=h1) == 200

    expected_reason = {"revoke": "revoked", "deactivate": "deactivated", "logout": "logout"}
    if action in expected_reason:
        assert await ended_rows(settings, "H1") == [(expected_reason[action], True)]


async def _end_behind_the_services_back(settings: Settings) -> None:
    """H1's tokens revoked and H2's sessions ended straight in the database: no control
    message, as if it had been lost."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            now = datetime.now(UTC)
            await session.execute(
                update(ApiToken).where(ApiToken.staff_id == "H1").values(revoked_at=now)
            )
            await session.execute(
                update(StaffSession)
                .where(StaffSession.staff_id == "H2")
                .values(ended_at=now, end_reason="revoked")
            )
    finally:
        await engine.dispose()


async def test_the_periodic_recheck_closes_sockets_when_a_message_was_lost(
    settings: Settings, live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service(WS_AUTH_RECHECK_SECONDS="1")
    h1, h2, h3 = [await make_staff(s, Role.handler) for s in ("H1", "H2", "H3")]
    h2_cookie = await login(service, h2)
    async with contextlib.AsyncExitStack() as stack:
        token_socket = await watch(stack, "H1 token", open_socket(service, h1))
        cookie_socket_ = await watch(stack, "H2 cookie", cookie_socket(service, h2_cookie))
        bystander = await watch(stack, "H3 token", open_socket(service, h3))
        await _end_behind_the_services_back(settings)
        ended = time.monotonic()
        for w in (token_socket, cookie_socket_):
            at, code = await w.closed(within=10)
            print(
                f"\n{w.label}: closed by the recheck {at - ended:.2f} s after the database change"
            )
            assert code == 4001
            assert at - ended <= 1.0 + 1.5  # one period, and the pass itself
        assert bystander.open


async def test_an_ack_over_a_socket_whose_credential_ended_is_refused(
    settings: Settings, live_service: Live, make_staff: MakeStaff
) -> None:
    # The recheck is far away, and no control message comes (the change is made in the
    # database directly): the ack itself must notice.
    service = live_service()
    h1 = await make_staff("H1", Role.handler)
    async with open_socket(service, h1) as ws:
        await frame(ws)
        call_id = await ring(service, "rv-ack", "H1")
        while (ringing := await frame(ws))["type"] != "call.ringing":
            pass
        assert ringing["call_id"] == call_id
        [alert] = ringing["data"]["alerts"]
        await _end_behind_the_services_back(settings)
        await ws.send(json.dumps({"type": "ack", "alert_id": alert["alert_id"]}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                got = await frame(ws)
                assert got["type"] != "alert.acknowledged", got
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            acknowledged = await session.scalar(
                select(Alert.acknowledged_at).where(Alert.id == alert["alert_id"])
            )
    finally:
        await engine.dispose()
    assert acknowledged is None


async def test_revoking_from_the_command_line_closes_sockets(
    settings: Settings, live_service: Live, make_staff: MakeStaff
) -> None:
    """With REDIS_URL the command publishes the control message itself: within 1 s, the
    recheck being a minute away. Without it the service cannot be told, and its recheck
    (1 s here) closes the socket; the command says so."""
    redis = bool(settings.redis_url)
    service = live_service(**({} if redis else {"WS_AUTH_RECHECK_SECONDS": "1"}))
    h1, h2 = await make_staff("H1", Role.handler), await make_staff("H2", Role.handler)
    cookie = await login(service, h1)
    async with contextlib.AsyncExitStack() as stack:
        doomed = [
            await watch(stack, "H1 token", open_socket(service, h1)),
            await watch(stack, "H1 cookie", cookie_socket(service, cookie)),
        ]
        bystander = await watch(stack, "H2 token", open_socket(service, h2))
        done = await asyncio.to_thread(run_cli, settings, "staff", "revoke", "--id", "H1")
        exited = time.monotonic()
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "revoked 1 token(s) of H1"
        assert ("no REDIS_URL" in done.stderr) is not redis
        for w in doomed:
            at, code = await w.closed(within=10)
            print(f"\nCLI revoke: {w.label} closed {(at - exited) * 1000:.0f} ms after it exited")
            assert code == 4001
            assert at - exited <= (LIMIT if redis else 1.0 + 1.5)
        assert bystander.open


async def test_a_service_stopped_right_after_it_started_stops_at_once(settings: Settings) -> None:
    """The watch's subscription may still be connecting when the service stops: stopping must
    not hang (redis-py can swallow a cancellation that lands while it connects)."""
    for _ in range(3):
        started = time.monotonic()
        async with LifespanManager(create_app(settings), shutdown_timeout=5):
            pass
        assert time.monotonic() - started < 5
