"""Acceptance 9 with real worker processes: two uvicorn workers, each with its own cache
(in-process on the embedded backend, Redis on production), and a history write made by another
process (this test) between calls: every later call, whichever worker takes it, sees it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from app.auth.models import Role
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history import writes
from app.history.models import Person, Phone
from app.telephony.signature import signed_headers
from tests.conftest import TELEPHONY_SECRET, MakeStaff
from tests.history.support import days_ago
from tests.support.servers import ServiceProcess, wait_until

NUMBER = "+441134960301"


async def write(settings: Settings, contact_id: str | None = None) -> None:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if contact_id is None:
                session.add(Person(id="W1", name="Worker Test"))
                await session.flush()
                session.add(Phone(e164=NUMBER, person_id="W1"))
                await writes.invalidate(session, person_ids=["W1"])
            else:
                await writes.record_contact(
                    session, contact_id=contact_id, occurred_at=days_ago(1), number=NUMBER,
                    person_id="W1", victim=True,
                )  # fmt: skip
    finally:
        await engine.dispose()


def ring(service: ServiceProcess, call: str, token: str) -> dict[str, Any]:
    body = json.dumps({
        "event_id": f"ev-{call}", "call_id": call, "type": "offered",
        "occurred_at": "2026-11-25T10:00:00Z", "caller": {"number": NUMBER},
    }).encode()  # fmt: skip
    response = httpx.post(
        service.url + "/api/v1/telephony/events", content=body,
        headers=signed_headers(TELEPHONY_SECRET.encode(), body), timeout=10,
    )  # fmt: skip
    assert response.status_code == 202, response.text
    call_id = response.json()["call_id"]
    found: dict[str, Any] = {}

    def stored() -> bool:
        got = httpx.get(
            f"{service.url}/api/v1/history/calls/{call_id}",
            headers={"Authorization": f"Bearer {token}"}, timeout=10,
        )  # fmt: skip
        if got.status_code == 200:
            found.update(got.json())
        return got.status_code == 200

    wait_until(stored, 30, what=f"context of call {call_id}")
    return found


async def test_two_workers_never_serve_a_summary_older_than_the_data(
    settings: Settings, live_service: Callable[..., ServiceProcess], make_staff: MakeStaff
) -> None:
    token = await make_staff("S9001", Role.supervisor)
    await write(settings)
    service = live_service(workers=2)
    # Enough calls that both workers have the (empty) summary cached.
    for n in range(6):
        assert ring(service, f"w-a{n}", token)["context"]["number_contacts"] == []
    await write(settings, "WC1")
    for n in range(6):
        seen = ring(service, f"w-b{n}", token)["context"]["number_contacts"]
        assert [c["id"] for c in seen] == ["WC1"]
    await write(settings, "WC2")
    for n in range(6):
        seen = ring(service, f"w-c{n}", token)["context"]["number_contacts"]
        assert sorted(c["id"] for c in seen) == ["WC1", "WC2"]
