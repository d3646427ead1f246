"""Issue 16 point 3 and acceptance 3: person and household search serve a live call or its
wrap-up (SEARCH_WRAPUP_MINUTES after the end), for its current handler or a supervisor; past
SEARCH_RATE_PER_MINUTE searches a minute, 429 with Retry-After. On both backends (the count
lives in the cache: Redis in production)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from app.audit.models import AuditLog
from app.auth.models import Role
from app.calls.models import Call
from app.db import utcnow
from tests.conftest import MakeStaff
from tests.history.identify_support import call_at, seed
from tests.thrive.support import auth

SEARCH = "/api/v1/history/search"
HOUSEHOLDS = "/api/v1/history/households"


async def _ended_ago(app: FastAPI, call_id: int, minutes: float) -> None:
    async with app.state.resources.sessions() as session, session.begin():
        await session.execute(
            update(Call)
            .where(Call.id == call_id)
            .values(ended_at=utcnow() - timedelta(minutes=minutes))
        )


async def _get(client: httpx.AsyncClient, url: str, token: str, **params: Any) -> httpx.Response:
    return await client.get(url, params=params, headers=auth(token))


async def test_search_after_the_wrap_up_window_is_refused_with_a_reason(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await seed(app)
    h1 = await make_staff("H1", Role.handler)
    sup = await make_staff("S1", Role.supervisor)
    live = await call_at(client, "H1")
    recent = await call_at(client, "H1", end=True)
    old = await call_at(client, "H1", end=True)
    await _ended_ago(app, recent, 14)
    await _ended_ago(app, old, 16)  # SEARCH_WRAPUP_MINUTES: 15 by default

    for call_id in (live, recent):
        for token in (h1, sup):
            found = await _get(client, SEARCH, token, call_id=call_id, q="Jo Demo")
            assert found.status_code == 200, found.text
            homes = await _get(client, HOUSEHOLDS, token, call_id=call_id, uprn="100012345678")
            assert homes.status_code == 200, homes.text

    for token in (h1, sup):
        for url, params in ((SEARCH, {"q": "Jo Demo"}), (HOUSEHOLDS, {"uprn": "100012345678"})):
            refused = await _get(client, url, token, call_id=old, **params)
            assert refused.status_code == 403, refused.text
            error = refused.json()["error"]
            assert error["code"] == "wrap_up_over"
            assert "15 minutes" in error["message"]
        link = await client.post(
            f"/api/v1/calls/{old}/subjects",
            json={"person_id": "P-JO", "role": "victim"},
            headers=auth(token),
        )
        assert link.status_code == 403 and link.json()["error"]["code"] == "wrap_up_over"

    # A handler who is not the call's current handler: refused even while it is live.
    h2 = await make_staff("H2", Role.handler)
    other = await _get(client, HOUSEHOLDS, h2, call_id=live, uprn="100012345678")
    assert other.status_code == 403 and other.json()["error"]["code"] == "not_call_handler"

    # The audit says which it was: during the call or in its wrap-up; never both.
    async with app.state.resources.sessions() as session:
        rows = list(await session.scalars(select(AuditLog).where(AuditLog.actor == "staff:H1")))
    by_call = {(r.call_id, r.justification) for r in rows if r.justification}
    assert (str(live), "mid-call search") in by_call
    assert (str(live), "mid-call lookup") in by_call
    assert (str(recent), "wrap-up search") in by_call
    assert (str(recent), "wrap-up lookup") in by_call
    assert not any(j.startswith("mid-call") for c, j in by_call if c == str(recent))
    assert not any(r.call_id == str(old) for r in rows)


async def test_the_31st_search_in_a_minute_gets_429_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await seed(app)
    h1 = await make_staff("H1", Role.handler)
    h2 = await make_staff("H2", Role.handler)
    call_id = await call_at(client, "H1")
    other_call = await call_at(client, "H2")
    limit = app.state.resources.settings.search_rate_per_minute
    assert limit == 30
    # Searches and household lookups share the count.
    for n in range(limit):
        if n % 2:
            answer = await _get(client, SEARCH, h1, call_id=call_id, q="Jo Demo")
        else:
            answer = await _get(client, HOUSEHOLDS, h1, call_id=call_id, uprn="100012345678")
        assert answer.status_code == 200, (n, answer.text)
    for url, params in ((SEARCH, {"q": "Jo Demo"}), (HOUSEHOLDS, {"uprn": "100012345678"})):
        refused = await _get(client, url, h1, call_id=call_id, **params)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another handler has a count of their own.
    assert (await _get(client, SEARCH, h2, call_id=other_call, q="Jo Demo")).status_code == 200
    # Refused searches are not searches: nothing was shown, nothing audited beyond the 30.
    async with app.state.resources.sessions() as session:
        searches = list(
            await session.scalars(
                select(AuditLog).where(
                    AuditLog.actor == "staff:H1", AuditLog.subject_type == "history_search"
                )
            )
        )
    assert len(searches) == limit // 2
