"""Acceptance 2 of issue 13 end to end: a withheld call rings at a handler's desk (a real
uvicorn process, a real socket); the handler searches by name and date of birth, links the
victim, and their socket receives the `repeat_victim` and `household_risk` alerts; the audit
log shows the search and the link. Waits on the frames, never on a clock: how long the link
took to reach the screen is printed for the report (the 100 ms goal is a measured figure,
not an assertion)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from app.audit.models import AuditLog
from app.auth.models import Role
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from tests.conftest import MakeStaff
from tests.history.identify_support import seed_store
from tests.realtime.support import event, open_socket, post, ring, until
from tests.support.servers import ServiceProcess

Live = Callable[..., ServiceProcess]


async def _call(http: httpx.AsyncClient, method: str, path: str, token: str, **kw: Any) -> Any:
    response = await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _audit_of(settings: Settings, call_id: int) -> list[AuditLog]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(
                await session.scalars(
                    select(AuditLog).where(AuditLog.call_id == str(call_id)).order_by(AuditLog.id)
                )
            )
    finally:
        await engine.dispose()


async def test_a_withheld_victim_is_found_linked_and_alerted_on_the_handlers_socket(
    settings: Settings, live_service: Live, make_staff: MakeStaff
) -> None:
    await seed_store(settings)
    service = live_service(workers=2 if settings.redis_url else 1)
    token = await make_staff("H1", Role.handler)
    http = httpx.AsyncClient(base_url=service.url, timeout=10)
    async with http, open_socket(service, token) as ws:
        call_id = await ring(service, "link-live-1", "H1")
        await post(service, event("link-live-1", "answered", handler_id="H1"))
        await until(ws, "call.answered", call_id)

        found = await _call(
            http,
            "GET",
            "/api/v1/history/search",
            token,
            params={"call_id": call_id, "q": "Jo Demo 1985-03-02"},
        )
        victim = found["persons"][0]
        assert victim["id"] == "P-JO"

        started = time.perf_counter()
        linked = await _call(
            http,
            "POST",
            f"/api/v1/calls/{call_id}/subjects",
            token,
            json={"person_id": victim["id"], "role": "victim"},
        )
        expected = {a["kind"] for a in linked["alerts"]}
        assert {"repeat_victim", "household_risk"} <= expected
        pushed: dict[str, dict[str, Any]] = {}
        while set(pushed) != expected:
            frame = await until(ws, "alert.raised", call_id)
            pushed[frame["data"]["kind"]] = frame["data"]
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(f"link -> alert frames on the handler's socket: {elapsed_ms:.1f} ms")
        assert {a["alert_id"] for a in pushed.values()} == {a["alert_id"] for a in linked["alerts"]}

    records = await _audit_of(settings, call_id)
    searches = [r for r in records if r.subject_type == "history_search"]
    links = [r for r in records if r.action == "combination"]
    assert [(r.actor, r.records["kind"]) for r in searches] == [("staff:H1", "name")]
    assert [(r.actor, r.subject_type, r.subject_id) for r in links] == [
        ("staff:H1", "person", "P-JO")
    ]
