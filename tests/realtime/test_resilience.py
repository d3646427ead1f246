"""Acceptance 3, 4 and 6 and shutdown: workers sharing Redis, Redis restarting, stuck clients,
bad client messages, going away. Real uvicorn processes and real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed

from app.auth.models import Role
from app.config import Settings
from tests.conftest import MakeStaff
from tests.realtime.support import event, frame, message, open_socket, post, ring, until
from tests.support.servers import ServiceProcess, throwaway_redis

Live = Callable[..., ServiceProcess]


async def _closed_with(ws: object, wait: float = 15.0) -> int | None:
    """Read until the server closes; the close code it sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), wait)  # type: ignore[attr-defined]
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def test_two_workers_share_redis_and_survive_its_restart(
    settings: Settings, live_service: Live, make_staff: MakeStaff
) -> None:
    # Both workers share a throwaway Redis whatever the run's backend: on the embedded run
    # they also share one SQLite file, on the production run PostgreSQL.
    token = await make_staff("H1", Role.handler)
    with throwaway_redis() as redis_server:
        env = {"REDIS_URL": redis_server.url, "PIPELINE_RETRY_MAX_SECONDS": "1"}
        worker_a, worker_b = live_service(**env), live_service(**env)
        async with open_socket(worker_b, token) as ws:
            await frame(ws)
            first = await ring(worker_a, "rt-w1", "H1")  # posted to A, socket held by B
            got = await until(ws, "call.ringing", first)
            assert got["data"]["alerts"][0]["kind"] == "withheld_number"

            redis_server.stop()
            # Accepted (stored) while Redis is down: these must all arrive once it is back.
            await post(worker_a, event("rt-w1", "answered", handler_id="H1"))
            await post(worker_a, event("rt-w1", "ended", cause="normal_clearing"))
            second = await ring(worker_a, "rt-w2", "H1")
            redis_server.start()

            expected = [("call.answered", first), ("call.ended", first), ("call.ringing", second)]
            arrived = [await message(ws, wait=30) for _ in expected]
            assert [(m["type"], m["call_id"]) for m in arrived] == expected
            # And live traffic after the restart, with no duplicate in between.
            await post(worker_a, event("rt-w2", "answered", handler_id="H1"))
            after = await message(ws, wait=30)
            assert (after["type"], after["call_id"]) == ("call.answered", second)


async def test_stuck_client_is_closed_while_others_keep_receiving(
    live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service(WS_HEARTBEAT_SECONDS="0.2", WS_IDLE_TIMEOUT="1.5")
    stuck_token = await make_staff("H1", Role.handler)
    sup = await make_staff("S1", Role.supervisor)
    async with open_socket(service, stuck_token) as stuck, open_socket(service, sup) as watcher:
        hello = json.loads(await stuck.recv())
        # From here the stuck client neither reads nor answers; the watcher reads all along.
        seen: asyncio.Queue[dict[str, object]] = asyncio.Queue()

        async def watch() -> None:
            while True:
                await seen.put(await message(watcher, wait=60))

        async def watched(type_: str, call_id: int) -> None:
            while True:
                got = await asyncio.wait_for(seen.get(), 15)
                if (got["type"], got["call_id"]) == (type_, call_id):
                    return

        reader = asyncio.create_task(watch())
        try:
            first = await ring(service, "rt-slow-1", "H1")
            await watched("call.ringing", first)
            await asyncio.wait_for(stuck.wait_closed(), 15)
            assert stuck.close_code == 4008
            second = await ring(service, "rt-slow-2", "H1")
            await watched("call.ringing", second)
            assert watcher.close_code is None  # the one answering heartbeats stays
        finally:
            reader.cancel()

    # The stuck client resumes from its last cursor and gets what it missed.
    async with open_socket(service, stuck_token, after=hello["id"]) as again:
        await frame(again)
        got = [(await message(again))["call_id"] for _ in range(2)]
        assert got == [first, second]


async def test_bad_client_messages_get_errors_and_never_crash_the_hub(
    live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service(WS_MAX_MESSAGE="4096")
    token = await make_staff("H1", Role.handler)
    async with open_socket(service, token, max_size=None) as ws:
        await frame(ws)
        for bad, code in [
            ("not json", "bad_message"),
            ("[1, 2]", "bad_message"),
            (json.dumps({"type": "launch"}), "bad_message"),
            (json.dumps({"type": "ack", "alert_id": "x"}), "bad_message"),
            (json.dumps({"type": "ack", "alert_id": 999999}), "alert_not_found"),
            (json.dumps({"type": "resume", "after": 5}), "bad_message"),
            (b"\x00\x01binary", "bad_message"),
        ]:
            await ws.send(bad)
            reply = await frame(ws)
            assert (reply["type"], reply["data"]["code"]) == ("error", code), bad
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"
        # Still delivering.
        call_id = await ring(service, "rt-bad", "H1")
        assert (await message(ws))["call_id"] == call_id
        # A huge frame closes the socket (1009, before the app reads it).
        await ws.send("x" * 10_000)
        assert await _closed_with(ws) == 1009

    async with open_socket(service, token) as ws:
        await frame(ws)
        for _ in range(25):
            await ws.send("{")
        assert await _closed_with(ws) == 4400

    # The hub is fine: a new socket is served.
    async with open_socket(service, token) as ws:
        assert (await frame(ws))["type"] == "hello"


async def test_acknowledge_over_socket_and_rest_is_recorded_and_broadcast(
    live_service: Live, make_staff: MakeStaff
) -> None:
    import httpx

    service = live_service()
    h1, h2 = await make_staff("H1", Role.handler), await make_staff("H2", Role.handler)
    sup = await make_staff("S1", Role.supervisor)
    async with open_socket(service, h1) as ws, open_socket(service, sup) as wss:
        await frame(ws), await frame(wss)
        call_id = await ring(service, "rt-ack", "H1")
        [alert] = (await until(ws, "call.ringing", call_id))["data"]["alerts"]
        async with httpx.AsyncClient(base_url=service.url) as http:
            other = await http.post(
                f"/api/v1/alerts/{alert['alert_id']}/ack",
                headers={"Authorization": f"Bearer {h2}"},
            )
            assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
            missing = await http.post(
                "/api/v1/alerts/999999/ack", headers={"Authorization": f"Bearer {h1}"}
            )
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "alert_not_found"

        await ws.send(json.dumps({"type": "ack", "alert_id": alert["alert_id"]}))
        for socket in (ws, wss):
            acked = await until(socket, "alert.acknowledged", call_id)
            assert acked["data"]["alert_id"] == alert["alert_id"]
            assert acked["data"]["acknowledged_by"] == "H1"
            assert acked["data"]["acknowledged_at"]

        # REST again: the first acknowledgement stands (who and when).
        async with httpx.AsyncClient(base_url=service.url) as http:
            again = await http.post(
                f"/api/v1/alerts/{alert['alert_id']}/ack",
                headers={"Authorization": f"Bearer {sup}"},
            )
        assert again.status_code == 200
        assert again.json()["acknowledged_by"] == "H1"


async def test_shutdown_closes_sockets_with_going_away(
    live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service()
    token = await make_staff("H1", Role.handler)
    async with contextlib.AsyncExitStack() as stack:
        # Several sockets: uvicorn's own shutdown (1012) must not overtake ours on any of them.
        sockets = [await stack.enter_async_context(open_socket(service, token)) for _ in range(8)]
        for ws in sockets:
            await frame(ws)
        await asyncio.to_thread(service.stop)
        codes = await asyncio.gather(*(_closed_with(ws) for ws in sockets))
        assert codes == [1001] * len(sockets)
