"""Fault drills (issue 18), scaled down: real `firstcontact serve` processes on a throwaway
Redis (and, for the database drills, a throwaway PostgreSQL), a driver that posts call
lifecycles and retries 5xx and refused connections as a platform does, and a handler socket
that resumes with `?after=` whenever its socket drops. Each asserts that every event was
accepted, that no answer was a 500, and that the handler received each call's frames once, in
the order of the call's own `seq`, with no resync (nothing fell out of the channel).

Which drill runs on which worker count ("workers" = service processes sharing the stores):
- kill -9 between commit and publish (FC_FAULT_KILL_AFTER_COMMIT, deterministic): 1 (the
  worker is restarted and its relay sends its own leftovers) and 2 (the survivor's relay does);
- Redis down and back: 1 and 2;
- Redis down plus a worker killed (kill -9) or stopped (SIGTERM): 1 (restarted, still without
  Redis: its own relay sends its rows once Redis is back) and 2 (the survivor's relay does);
- SIGTERM under load: 1 (restarted) and 2 (the driver moves to the other worker); the stopped
  one leaves no frame only in its memory;
- PostgreSQL restarted: 1 and 2; a locked table answering 503 within the statement timeout: 1;
  both on a throwaway PostgreSQL whatever the run's backend (so only on the default run).
The Redis drills are `production_only`: the test command runs them on PostgreSQL, as a force
runs Redis between workers (run directly, they take the run's backend, SQLite included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.auth.models import Role
from app.config import Settings
from app.telephony.signature import signed_headers
from tests.conftest import TELEPHONY_SECRET, MakeStaff, process_env
from tests.metrics.test_metrics import SCRAPE, TOKEN, sample
from tests.realtime.support import EVENTS_URL, event, frame, open_socket
from tests.support.servers import (
    ROOT,
    ServiceProcess,
    eventually,
    throwaway_postgres,
    throwaway_redis,
)

Live = Callable[..., ServiceProcess]
HANDLER = "HD1"
CALLS = 12
# What the handler's screen gets of each call: ringing, answered, ended (seq 1 is the
# supervisors' `offered`).
EXPECTED = [("call.ringing", 2), ("call.answered", 3), ("call.ended", 4)]
# The supervisors' board: every frame of every call, ending in `ended`.
SUPERVISORS = [("call.offered", 1), *EXPECTED]


@dataclass
class Driver:
    """Posts lifecycles to whichever service is up, retrying 5xx and refused connections."""

    services: list[ServiceProcess]
    statuses: dict[int, int] = field(default_factory=dict)
    accepted: int = 0
    next_service: int = 0

    def _live(self) -> ServiceProcess:
        for _ in range(len(self.services)):
            service = self.services[self.next_service % len(self.services)]
            self.next_service += 1
            if service.proc is not None and service.proc.poll() is None:
                return service
        return self.services[0]

    async def post(self, http: httpx.AsyncClient, body: dict[str, Any]) -> int:
        raw = json.dumps(body).encode()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            headers = signed_headers(TELEPHONY_SECRET.encode(), raw, int(time.time()))
            try:
                response = await http.post(
                    self._live().url + EVENTS_URL, content=raw, headers=headers, timeout=15
                )
            except httpx.TransportError:
                await asyncio.sleep(0.1)  # the platform's retry delay
                continue
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code in (200, 202):
                self.accepted += 1
                return int(response.json()["call_id"])
            assert response.status_code >= 500, response.text  # 4xx: the drill is wrong
            await asyncio.sleep(0.1)
        raise AssertionError(f"never accepted: {body['event_id']}")

    async def in_flight(self, events: int = 8) -> None:
        """Wait until a few calls are under way (the moment a drill strikes)."""

        async def accepted() -> bool:
            return self.accepted >= events

        await eventually(accepted, what="a few calls in flight")

    async def lifecycle(self, http: httpx.AsyncClient, name: str) -> int:
        caller = {"number": "", "presentation": "withheld"}
        await self.post(http, event(name, "offered", caller=caller, called="999"))
        call_id = await self.post(http, event(name, "ringing", handler_id=HANDLER))
        await self.post(http, event(name, "answered", handler_id=HANDLER))
        await self.post(http, event(name, "ended", cause="normal_clearing"))
        return call_id

    async def run(self, prefix: str, calls: int = CALLS, per_second: float = 10.0) -> list[int]:
        async with httpx.AsyncClient() as http:

            async def one(n: int) -> int:
                await asyncio.sleep(n / per_second)  # the calls' arrival times
                return await self.lifecycle(http, f"{prefix}-{n}")

            return list(await asyncio.gather(*(one(n) for n in range(calls))))


@dataclass
class HandlerFeed:
    """A handler's (or the supervisors') socket, reopened with `?after=<last cursor>` whenever
    it drops; `expected`: each call's frames as that screen must get them."""

    token: str
    services: list[ServiceProcess]
    expected: list[tuple[str, int]]
    frames: list[tuple[int, int, str]] = field(default_factory=list)
    resyncs: int = 0
    cursor: str | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def _live(self) -> ServiceProcess:
        for service in self.services:
            if service.proc is not None and service.proc.poll() is None:
                return service
        return self.services[0]

    async def run(self) -> None:
        while True:
            try:
                async with open_socket(self._live(), self.token, after=self.cursor) as ws:
                    while True:
                        got = await frame(ws, wait=60)
                        if got["type"] == "hello":
                            self.cursor = self.cursor or got["id"]
                            self.ready.set()
                            continue
                        if got["type"] == "resync":  # the cursor was lost: frames may be too
                            self.resyncs += 1
                        elif got["call_id"] is not None:
                            self.frames.append((got["call_id"], got["data"]["seq"], got["type"]))
                        self.cursor = got["id"] or self.cursor
            except (ConnectionClosed, InvalidStatus, OSError, TimeoutError):
                await asyncio.sleep(0.2)  # the page's reconnect delay

    def of(self, call_id: int) -> list[tuple[str, int]]:
        return [(type_, seq) for c, seq, type_ in self.frames if c == call_id]

    async def complete(self, call_ids: list[int], within: float = 30.0) -> None:
        async def done() -> bool:
            return all(len(self.of(c)) >= len(self.expected) for c in call_ids)

        with contextlib.suppress(TimeoutError):
            await eventually(done, within=within, what="every frame on the screen")
        missing = {c: self.of(c) for c in call_ids if self.of(c) != self.expected}
        assert not missing, f"frames missing, repeated or out of order: {missing}"
        assert self.resyncs == 0


@contextlib.asynccontextmanager
async def handler_feed(
    token: str, services: list[ServiceProcess], expected: list[tuple[str, int]] = EXPECTED
) -> Any:
    feed = HandlerFeed(token, services, expected)
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(feed.ready.wait(), 15)
        yield feed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _env(redis_url: str, **extra: str) -> dict[str, str]:
    # Short relay periods: the drill's leftovers go within a second, not the defaults' 2.5 s.
    return {"REDIS_URL": redis_url, "OUTBOX_POLL_SECONDS": "0.2", "OUTBOX_GRACE_SECONDS": "0.5",
            "PIPELINE_RETRY_MAX_SECONDS": "1", "METRICS_TOKEN": TOKEN, **extra}  # fmt: skip


def _no_500(driver: Driver, calls: int = CALLS) -> None:
    assert driver.accepted == 4 * calls, driver.statuses
    assert 500 not in driver.statuses, driver.statuses


@pytest.mark.production_only
@pytest.mark.parametrize("workers", [1, 2])
async def test_kill_between_commit_and_publish_loses_nothing(
    settings: Settings, live_service: Live, make_staff: MakeStaff, workers: int
) -> None:
    token = await make_staff(HANDLER, Role.handler)
    with throwaway_redis() as redis_server:
        # The victim exits right after its 5th commit that wrote frames, before publishing.
        victim = live_service(**_env(redis_server.url, FC_FAULT_KILL_AFTER_COMMIT="5"))
        others = [live_service(**_env(redis_server.url))] if workers == 2 else []
        services = [victim, *others]
        async with handler_feed(token, others or services) as feed:
            driver = Driver(services)
            drive = asyncio.create_task(driver.run("kc"))

            async def exited() -> bool:
                return victim.proc is not None and victim.proc.poll() is not None

            await eventually(exited, what="the fault-injected exit")
            assert victim.proc is not None and victim.proc.returncode == 137
            if workers == 1:
                # Restarted on the same stores: its relay sends what it committed, unsent.
                victim.env = {k: v for k, v in victim.env.items() if not k.startswith("FC_FAULT")}
                victim.start()
            call_ids = await drive
            await feed.complete(call_ids)
        _no_500(driver)


async def _outbox_backlog(service: ServiceProcess) -> float:
    """The outbox backlog as the operations team sees it: a scrape of `/metrics`."""
    async with httpx.AsyncClient() as http:
        response = await http.get(service.url + "/metrics", headers=SCRAPE, timeout=10)
    assert response.status_code == 200, response.text
    return sample(response.text, "firstcontact_outbox_backlog")


async def _redis_drill(
    token: str,
    supervisor: str,
    services: list[ServiceProcess],
    redis_server: Any,
    prefix: str,
    fault: Callable[[], None] | None = None,
) -> None:
    """Calls through `services` while Redis goes away (and `fault` strikes meanwhile) and back;
    the handler's and the supervisors' sockets are on the last service. `/metrics` shows the
    outbox's backlog rise while Redis is away and drain once it is back."""
    async with (
        handler_feed(token, services[-1:]) as feed,
        handler_feed(supervisor, services[-1:], SUPERVISORS) as board,
    ):
        driver = Driver(services)
        drive = asyncio.create_task(driver.run(prefix))

        await driver.in_flight()
        redis_server.stop()
        # Redis away: events keep being accepted, their frames wait in the outbox.
        backlog = 0.0

        async def backlog_risen() -> bool:
            nonlocal backlog
            backlog = await _outbox_backlog(services[-1])
            return backlog >= 4

        await eventually(backlog_risen, what="frames waiting in the outbox while Redis is away")
        if fault is not None:
            await asyncio.to_thread(fault)
        redis_server.start()
        call_ids = await drive
        await feed.complete(call_ids)
        await board.complete(call_ids)  # every call ends `ended` on the board, in order

        async def drained() -> bool:
            return await _outbox_backlog(services[-1]) == 0

        await eventually(drained, what="the outbox drained once Redis is back")
    _no_500(driver)


@pytest.mark.production_only
@pytest.mark.parametrize("workers", [1, 2])
async def test_redis_down_and_back_loses_and_reorders_nothing(
    settings: Settings, live_service: Live, make_staff: MakeStaff, workers: int
) -> None:
    token = await make_staff(HANDLER, Role.handler)
    supervisor = await make_staff("SV1", Role.supervisor)
    with throwaway_redis(persist=True) as redis_server:
        services = [live_service(**_env(redis_server.url)) for _ in range(workers)]
        await _redis_drill(token, supervisor, services, redis_server, "rd")


@pytest.mark.production_only
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
async def test_redis_down_and_a_worker_stopped_loses_nothing(
    settings: Settings, live_service: Live, make_staff: MakeStaff, workers: int, how: str
) -> None:
    """While Redis is away a worker dies (kill -9) or is stopped (SIGTERM) and, alone, is
    restarted (still without Redis): what it committed and could not publish is in the
    table, and the survivor's relay (or its own, restarted) sends it once Redis is back."""
    token = await make_staff(HANDLER, Role.handler)
    supervisor = await make_staff("SV1", Role.supervisor)
    with throwaway_redis(persist=True) as redis_server:
        services = [live_service(**_env(redis_server.url)) for _ in range(workers)]
        victim = services[0]

        def fault() -> None:
            victim.stop(signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
            if workers == 1:
                victim.start()

        prefix = f"r{'k' if how == 'kill -9' else 't'}{workers}"
        await _redis_drill(token, supervisor, services, redis_server, prefix, fault=fault)


@pytest.mark.production_only
@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_under_load_loses_nothing(
    settings: Settings, live_service: Live, make_staff: MakeStaff, workers: int
) -> None:
    """A graceful stop mid-load: requests in flight end, the driver moves to the other worker
    (or waits for the only one to be restarted), and the stopped one leaves no frame only in
    its memory."""
    token = await make_staff(HANDLER, Role.handler)
    with throwaway_redis() as redis_server:
        services = [live_service(**_env(redis_server.url)) for _ in range(workers)]
        stopping = services[0]
        async with handler_feed(token, services[-1:]) as feed:
            driver = Driver(services)
            drive = asyncio.create_task(driver.run(f"st{workers}"))

            await driver.in_flight()
            await asyncio.to_thread(stopping.stop)  # SIGTERM: graceful, requests in flight end
            if workers == 1:
                await asyncio.to_thread(stopping.start)
            call_ids = await drive
            await feed.complete(call_ids)
        _no_500(driver)


# --- the database drills: a throwaway PostgreSQL ---------------------------------------


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, check=True, timeout=120,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def _on_throwaway_postgres(
    redis_url: str, workers: int = 1, **extra: str
) -> Iterator[tuple[Any, list[ServiceProcess], str]]:
    with throwaway_postgres() as pg:
        env = process_env(DATABASE_URL=pg.url, **_env(redis_url, **extra))
        _cli(env, "db", "upgrade")
        token = _cli(
            env, "staff", "create", "--id", HANDLER, "--name", "Drill", "--role", "handler"
        )
        services = [ServiceProcess(env=env).start() for _ in range(workers)]
        try:
            yield pg, services, token
        finally:
            for service in services:
                service.stop()


@pytest.mark.parametrize("workers", [1, 2])
async def test_postgres_restarted_gives_503s_never_500_and_loses_nothing(workers: int) -> None:
    with (
        throwaway_redis() as redis_server,
        _on_throwaway_postgres(redis_url=redis_server.url, workers=workers) as (
            pg,
            services,
            token,
        ),
    ):
        service = services[-1]
        async with handler_feed(token, [service]) as feed:
            driver = Driver(services)
            drive = asyncio.create_task(driver.run(f"pg{workers}"))

            await driver.in_flight()
            await asyncio.to_thread(pg.stop, "fast")  # "the database system is shutting down"

            async def outage_seen() -> bool:
                return driver.statuses.get(503, 0) >= 1

            await eventually(outage_seen, what="a webhook answered 503 while the store is down")
            # A socket opened now cannot have its credential read: told to retry (1013),
            # never a failed (500) handshake.
            async with open_socket(service, token) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await frame(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            await asyncio.to_thread(pg.start)
            call_ids = await drive
            await feed.complete(call_ids)
        _no_500(driver)
        assert driver.statuses.get(503, 0) >= 1, driver.statuses  # the outage was seen


async def test_a_locked_table_answers_503_within_the_statement_timeout() -> None:
    with (
        throwaway_redis() as redis_server,
        _on_throwaway_postgres(redis_server.url, DATABASE_STATEMENT_TIMEOUT_MS="1000") as (
            pg,
            (service,),
            _token,
        ),
    ):
        locker = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{pg.port}/postgres")
        try:
            async with locker.transaction():
                await locker.execute("LOCK TABLE call_event IN ACCESS EXCLUSIVE MODE")
                async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
                    ready = await http.get("/readyz")
                    assert ready.status_code == 503
                    assert ready.json()["checks"]["database"]["reason"] == "locked"
                    raw = json.dumps(event("lk-1", "offered", called="999")).encode()
                    headers = signed_headers(TELEPHONY_SECRET.encode(), raw, int(time.time()))
                    started = time.monotonic()
                    response = await http.post(EVENTS_URL, content=raw, headers=headers)
                    waited = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"]
            assert waited < 10, waited  # the timeout (1 s) and some, not the platform's 30 s
            async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
                assert (await http.get("/readyz")).status_code == 200
                response = await http.post(EVENTS_URL, content=raw, headers=headers)
                assert response.status_code == 202  # the platform's retry, once unlocked
        finally:
            await locker.close()
