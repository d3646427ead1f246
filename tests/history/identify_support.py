"""Fixture data and calls for the identification tests (issue 13 points 3 and 4): a victim
found by name and date of birth, her partner with an active DA marker, neighbours."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history import writes
from app.history.models import Household, Person, PersonHousehold, Phone
from tests.history.support import days_ago
from tests.telephony.support import event, post_signed

JO_DOB = date(1985, 3, 2)


async def seed(app: FastAPI) -> None:
    """`seed_with` the app's sessions."""
    await seed_with(app.state.resources.sessions)


async def seed_store(settings: Settings) -> None:
    """`seed_with` on an engine of its own (for a test whose service runs in a process)."""
    engine = create_engine(settings)
    try:
        await seed_with(create_sessionmaker(engine))
    finally:
        await engine.dispose()


async def seed_with(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Jo Demo (born 1985-03-02) lives with her partner Sam Demo (active DA high-risk marker)
    at 12 Acacia Avenue; another Jo Demo, born 1990, lives elsewhere; Pat Neighbour lives next
    door at 14. Jo has two victim contacts in the last year."""
    people = [
        ("P-JO", "Jo Demo", JO_DOB, ["+447700900501"]),
        ("P-SAM", "Sam Demo", date(1983, 7, 9), ["+447700900502"]),
        ("P-JO2", "Jo Demo", date(1990, 1, 1), []),
        ("P-PAT", "Pat Neighbour", date(1970, 5, 5), ["+447700900514"]),
    ]
    homes = [
        ("H-12", "100012345678", "12 Acacia Avenue, Testtown TE1 2ST", ["P-JO", "P-SAM"]),
        ("H-14", "100012345679", "14 Acacia Avenue, Testtown TE1 2ST", ["P-PAT"]),
        ("H-99", "100099999999", "99 Elsewhere Road, Othertown OT9 9ZZ", ["P-JO2"]),
    ]
    async with sessions() as session, session.begin():
        for pid, name, born, numbers in people:
            session.add(Person(id=pid, name=name, date_of_birth=born))
            await session.flush()
            for number in numbers:
                session.add(Phone(e164=number, person_id=pid))
        for hid, uprn, address, members in homes:
            session.add(Household(id=hid, uprn=uprn, address=address))
            await session.flush()
            for pid in members:
                session.add(PersonHousehold(person_id=pid, household_id=hid))
        await writes.invalidate(
            session, person_ids=[p[0] for p in people], household_ids=[h[0] for h in homes]
        )
    for n, days in enumerate((40, 200)):
        async with sessions() as session, session.begin():
            await writes.record_contact(
                session,
                contact_id=f"C-JO-{n}",
                occurred_at=days_ago(days),
                person_id="P-JO",
                household_id="H-12",
                incident_type="assault",
                victim=True,
                domestic_abuse=True,
            )
    async with sessions() as session, session.begin():
        await writes.set_marker(
            session,
            marker_id="M-SAM-DA",
            subject_type="person",
            subject_id="P-SAM",
            kind="da_high_risk",
            set_at=days_ago(30),
        )


async def call_at(
    client: httpx.AsyncClient,
    handler: str = "H1",
    *,
    number: str | None = None,
    external: str | None = None,
    end: bool = False,
) -> int:
    """A call offered (withheld unless `number`), ringing at `handler` and answered (and
    ended, with `end`): the service's call id."""
    external = external or f"id-{uuid.uuid4().hex[:12]}"
    start = datetime.now(UTC) - timedelta(seconds=60)
    caller: dict[str, Any] = (
        {"number": number, "presentation": "allowed"}
        if number
        else {"number": "", "presentation": "withheld"}
    )
    bodies = [
        event(external, "offered", start, caller=caller, called="999", queue="emergency"),
        event(external, "ringing", start + timedelta(seconds=2), handler_id=handler),
        event(external, "answered", start + timedelta(seconds=5), handler_id=handler),
    ]
    if end:
        bodies.append(event(external, "ended", start + timedelta(seconds=50), cause="normal"))
    call_id = 0
    for body in bodies:
        response = await post_signed(client, body)
        assert response.status_code == 202, response.text
        call_id = int(response.json()["call_id"])
    return call_id
