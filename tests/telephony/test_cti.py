"""Acceptance 4: a CTI newCall/answer/hangup sequence gives one call answered by the mapped
handler; integration tokens only, never in the URL."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.auth.models import Role
from app.calls.models import Call, CallEventRow
from tests.conftest import MakeStaff
from tests.telephony.support import count_rows

URL = "/api/v1/telephony/cti"


def cti(event: str, **extra: object) -> dict[str, object]:
    return {"event": event, "callId": "cti-77", "from": "07700 900123", "to": "999",
            "direction": "inbound", "queue": "emergency", **extra}  # fmt: skip


async def test_new_call_answer_hangup_is_one_answered_call(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("CTI1", Role.integration)
    auth = {"Authorization": f"Bearer {token}"}
    steps = [
        cti("newCall", user="H1001", timestamp="2026-11-25T20:00:00Z"),
        cti("answer", user="H1001", timestamp="2026-11-25T20:00:04Z"),
        cti("hangup", cause="normal", timestamp="2026-11-25T20:03:00Z"),
    ]
    for body in steps:
        response = await client.post(URL, json=body, headers=auth)
        assert response.status_code == 202, response.text
    # The same hangup again (a CTI retry): the original outcome, stored once.
    again = await client.post(URL, json=steps[-1], headers=auth)
    assert again.status_code == 200
    async with app.state.resources.sessions() as session:
        call = (await session.scalars(select(Call))).one()
    assert (call.source, call.state, call.handler_id, call.handlers) == (
        "cti", "ended", "H1001", ["H1001"],
    )  # fmt: skip
    assert call.answered_at is not None and call.end_cause == "normal"
    assert (call.caller_e164, call.called, call.queue) == ("+447700900123", "999", "emergency")
    assert await count_rows(app, CallEventRow) == 3


async def test_answering_number_maps_when_user_absent(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("CTI1", Role.integration)
    auth = {"Authorization": f"Bearer {token}"}
    await client.post(URL, json=cti("newCall"), headers=auth)
    await client.post(URL, json=cti("answer", answeringNumber="H1002"), headers=auth)
    async with app.state.resources.sessions() as session:
        call = (await session.scalars(select(Call))).one()
    assert (call.state, call.handler_id) == ("answered", "H1002")


@pytest.mark.parametrize("role", [Role.handler, Role.admin, None])
async def test_only_integration_tokens(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff, role: Role | None
) -> None:
    headers = {}
    if role is not None:
        headers["Authorization"] = f"Bearer {await make_staff('X1', role)}"
    response = await client.post(URL, json=cti("newCall"), headers=headers)
    assert response.status_code == (401 if role is None else 403)
    # A token in the URL is not a credential.
    token = await make_staff("CTI9", Role.integration)
    in_url = await client.post(f"{URL}?token={token}&access_token={token}", json=cti("newCall"))
    assert in_url.status_code == 401
    assert await count_rows(app, CallEventRow) == 0


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", b'{"event": "teleport", "callId": "c"}', b'{"event": "answer"}',
     b'{"event": "answer", "callId": "c", "timestamp": "1990-01-01T00:00:00Z"}', b"[1,2]",
     b'{"event": "answer", "callId": "c", "user": "H1\\u0000"}'],
)  # fmt: skip
async def test_bad_cti_bodies(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff, body: bytes
) -> None:
    token = await make_staff("CTI1", Role.integration)
    response = await client.post(URL, content=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (400, 422)
    assert "error" in response.json()
    assert await count_rows(app, CallEventRow) == 0


async def test_concurrent_cti_calls_are_all_stored(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    import asyncio

    token = await make_staff("CTI1", Role.integration)
    auth = {"Authorization": f"Bearer {token}"}

    async def one_call(n: int) -> list[int]:
        codes = []
        for event in ("newCall", "answer", "hangup"):
            body = cti(event, callId=f"cc-{n}", user="H1001")
            codes.append((await client.post(URL, json=body, headers=auth)).status_code)
        return codes

    results = await asyncio.gather(*(one_call(n) for n in range(20)))
    assert all(codes == [202, 202, 202] for codes in results), results
    assert await count_rows(app, CallEventRow) == 60
    assert await count_rows(app, Call, Call.state == "ended") == 20
