"""REST: GET /api/v1/calls and /api/v1/calls/{id}, role-checked and filtered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from app.audit.models import AuditLog
from app.auth.models import Role
from app.calls.models import Call
from tests.conftest import MakeStaff
from tests.telephony.support import lifecycle, post_signed


async def _seed(client: httpx.AsyncClient, app: FastAPI) -> dict[str, int]:
    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    # H1's call ended; H2's call is still answered; H1 took over H3's call by transfer.
    for body in lifecycle("a", now - timedelta(hours=3), handler="H1"):
        ids["a"] = (await post_signed(client, body)).json()["call_id"]
    for body in lifecycle("b", now - timedelta(hours=1), handler="H2")[:3]:
        ids["b"] = (await post_signed(client, body)).json()["call_id"]
    for body in lifecycle("c", now - timedelta(minutes=30), handler="H3")[:3]:
        ids["c"] = (await post_signed(client, body)).json()["call_id"]
    at = (now - timedelta(minutes=20)).isoformat()
    transfer = {"event_id": "c-t", "call_id": "c", "type": "transferred", "occurred_at": at,
                "handler_id": "H1"}  # fmt: skip
    await post_signed(client, transfer)
    async with app.state.resources.sessions() as session, session.begin():
        await session.execute(update(Call).where(Call.id == ids["b"]).values(flagged=True))
    return ids


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_handler_sees_only_own_calls(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    ids = await _seed(client, app)
    h1 = _auth(await make_staff("H1", Role.handler))
    page = (await client.get("/api/v1/calls", headers=h1)).json()
    assert sorted(c["id"] for c in page["items"]) == sorted([ids["a"], ids["c"]])
    assert (await client.get(f"/api/v1/calls/{ids['a']}", headers=h1)).status_code == 200
    assert (await client.get(f"/api/v1/calls/{ids['c']}", headers=h1)).status_code == 200
    other = await client.get(f"/api/v1/calls/{ids['b']}", headers=h1)
    assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
    assert (await client.get("/api/v1/calls?handler=H2", headers=h1)).status_code == 403


async def test_supervisor_sees_all_with_filters_and_pages(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    ids = await _seed(client, app)
    sup = _auth(await make_staff("S1", Role.supervisor))

    async def listed(query: str) -> list[int]:
        response = await client.get("/api/v1/calls" + query, headers=sup)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert await listed("") == [ids["c"], ids["b"], ids["a"]]
    assert await listed("?active=true") == [ids["c"], ids["b"]]
    assert await listed("?active=false") == [ids["a"]]
    assert await listed("?flagged=true") == [ids["b"]]
    assert await listed("?handler=H1") == [ids["c"], ids["a"]]
    since = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    assert await listed("?" + str(httpx.QueryParams({"since": since}))) == [ids["c"], ids["b"]]
    until = (datetime.now(UTC) - timedelta(minutes=45)).isoformat()
    assert await listed("?" + str(httpx.QueryParams({"until": until}))) == [ids["b"], ids["a"]]
    first = (await client.get("/api/v1/calls?limit=2", headers=sup)).json()
    assert [c["id"] for c in first["items"]] == [ids["c"], ids["b"]]
    assert first["next_before"] == ids["b"]
    assert await listed(f"?limit=2&before={first['next_before']}") == [ids["a"]]

    detail = (await client.get(f"/api/v1/calls/{ids['a']}", headers=sup)).json()
    assert [e["type"] for e in detail["events"]] == ["offered", "ringing", "answered", "ended"]
    assert detail["state"] == "ended" and detail["talk_seconds"] == 60.0
    assert detail["wait_seconds"] == 5.0 and detail["caller_e164"] == "+447700900123"
    async with app.state.resources.sessions() as session:
        audit = (await session.scalars(select(AuditLog).where(AuditLog.actor == "staff:S1"))).all()
    # The detail read once; every list read recorded what it showed (issue 16 point 4).
    read = [(a.subject_type, a.subject_id) for a in audit if a.justification != "calls list"]
    assert read == [("call", str(ids["a"]))]
    listed_calls = {a.call_id for a in audit if a.justification == "calls list"}
    assert listed_calls == {str(ids[k]) for k in "abc"}


async def test_roles_and_bad_queries(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await _seed(client, app)
    assert (await client.get("/api/v1/calls")).status_code == 401
    integ = _auth(await make_staff("I1", Role.integration))
    assert (await client.get("/api/v1/calls", headers=integ)).status_code == 403
    admin = _auth(await make_staff("A1", Role.admin))
    assert (await client.get("/api/v1/calls/999999", headers=admin)).status_code == 404
    for query in ("?limit=0", "?limit=1000", "?since=yesterday", "?active=maybe", "?before=-1"):
        response = await client.get("/api/v1/calls" + query, headers=admin)
        assert response.status_code == 422, query
        assert response.json()["error"]["code"] == "validation_error"
