"""Acceptance 1, 2 and 5 of real-time delivery: real uvicorn processes, real sockets, both
backends. Events are posted signed to the canonical webhook, as a telephony platform would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed

from app.auth.models import Role
from tests.conftest import MakeStaff
from tests.realtime.support import event, frame, message, open_socket, post, ring, until
from tests.support.servers import ServiceProcess

Live = Callable[..., ServiceProcess]


async def test_ringing_goes_to_its_handler_and_supervisors_only(
    live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service()
    h1, h2 = await make_staff("H1", Role.handler), await make_staff("H2", Role.handler)
    sup = await make_staff("S1", Role.supervisor)
    async with (
        open_socket(service, h1) as ws1,
        open_socket(service, h2) as ws2,
        open_socket(service, sup) as wss,
    ):
        for ws in (ws1, ws2, wss):
            hello = await frame(ws)
            assert hello["type"] == "hello" and hello["id"] is not None
        call_id = await ring(service, "rt-a", "H1")

        ringing = await message(ws1)
        assert ringing["type"] == "call.ringing" and ringing["call_id"] == call_id
        assert set(ringing) == {"id", "type", "ts", "call_id", "data"}
        data = ringing["data"]
        assert data["call"]["handler_id"] == "H1" and data["call"]["state"] == "ringing"
        assert isinstance(data["context"], dict)
        # Raised on offered while the caller was queued; delivered as the call rings.
        assert [a["kind"] for a in data["alerts"]] == ["withheld_number"]
        assert isinstance(data["alerts"][0]["alert_id"], int)

        offered = await message(wss)
        assert (offered["type"], offered["call_id"]) == ("call.offered", call_id)
        assert [a["kind"] for a in offered["data"]["alerts"]] == ["withheld_number"]
        assert (await message(wss))["type"] == "call.ringing"

        # H2's first channel message is its own call, not H1's.
        other = await ring(service, "rt-b", "H2")
        first = await message(ws2)
        assert (first["type"], first["call_id"]) == ("call.ringing", other)


async def test_reconnect_with_last_cursor_gets_exactly_what_was_missed(
    live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service()
    token = await make_staff("H1", Role.handler)
    async with open_socket(service, token) as ws:
        first = await ring(service, "rt-r1", "H1")
        last = await until(ws, "call.ringing", first)
    cursor = last["id"]

    # Five handler-channel messages while H1 is away (offered goes to supervisors only).
    await post(service, event("rt-r1", "answered", handler_id="H1"))
    await post(service, event("rt-r1", "ended", cause="normal_clearing"))
    second = await ring(service, "rt-r2", "H1")
    await post(service, event("rt-r2", "answered", handler_id="H1"))
    await post(service, event("rt-r2", "ended", cause="normal_clearing"))
    expected = [
        ("call.answered", first), ("call.ended", first), ("call.ringing", second),
        ("call.answered", second), ("call.ended", second),
    ]  # fmt: skip

    async with open_socket(service, token, after=cursor) as ws:
        hello = await frame(ws)
        assert hello["type"] == "hello" and hello["data"]["resumed"] is True
        missed = [await message(ws) for _ in expected]
        assert [(m["type"], m["call_id"]) for m in missed] == expected
        ids = [m["id"] for m in missed]
        assert len(set(ids)) == 5 and ids == sorted(
            ids, key=lambda c: tuple(map(int, c.split("-")))
        )
        # Then live traffic, with nothing in between.
        third = await ring(service, "rt-r3", "H1")
        live = await message(ws)
        assert (live["type"], live["call_id"]) == ("call.ringing", third)

        # The same through a `resume` message on an open socket.
        await ws.send(json.dumps({"type": "resume", "after": missed[2]["id"]}))
        again = [await message(ws) for _ in range(3)]
        assert [m["id"] for m in again] == [*ids[3:], live["id"]]


async def test_unknown_or_expired_cursor_gets_resync_with_open_calls(
    live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service()
    token = await make_staff("H1", Role.handler)
    async with open_socket(service, token) as ws:
        call_id = await ring(service, "rt-s1", "H1")
        await until(ws, "call.ringing", call_id)  # published (processing runs after the 202)
    async with open_socket(service, token, after="1-0") as ws:
        await frame(ws)  # hello
        resync = await message(ws)
    assert resync["type"] == "resync" and resync["data"]["reason"] == "cursor_expired"
    [open_call] = resync["data"]["calls"]
    assert open_call["call"]["id"] == call_id and open_call["call"]["state"] == "ringing"
    assert [a["kind"] for a in open_call["alerts"]] == ["withheld_number"]
    assert isinstance(open_call["context"], dict)
    # The resync's id is a cursor to resume from.
    async with open_socket(service, token, after=resync["id"]) as ws:
        await frame(ws)
        await post(service, event("rt-s1", "answered", handler_id="H1"))
        assert (await message(ws))["type"] == "call.answered"
    async with open_socket(service, token, after="not-a-cursor") as ws:
        await frame(ws)
        assert (await message(ws))["data"]["reason"] == "unknown_cursor"


async def _close_code(ws: object) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)  # type: ignore[attr-defined]
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


@pytest.mark.parametrize(
    ("who", "origin", "code"),
    [
        (None, None, 4001),  # no credentials
        ("bad-token", None, 4001),  # unknown token
        ("qa", None, 4003),  # a role without a live channel
        ("H1", "https://evil.example", 4003),  # another site's page
    ],
)
async def test_refused_sockets_get_documented_close_codes(
    live_service: Live, make_staff: MakeStaff, who: str | None, origin: str | None, code: int
) -> None:
    service = live_service()
    token: str | None = None
    if who == "bad-token":
        token = "fct_" + "x" * 43
    elif who == "qa":
        token = await make_staff("Q1", Role.qa)
    elif who is not None:
        token = await make_staff(who, Role.handler)
    async with open_socket(service, token, origin=origin) as ws:
        assert await _close_code(ws) == code


async def test_token_in_url_is_not_accepted_and_same_host_origin_is(
    live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service()
    token = await make_staff("H1", Role.handler)
    from websockets.asyncio.client import connect

    async with connect(f"{service.ws_url}/ws?token={token}&access_token={token}") as ws:
        assert await _close_code(ws) == 4001
    async with open_socket(service, token, origin=service.url) as ws:
        assert (await frame(ws))["type"] == "hello"
