"""Issue 16 acceptance 5 (erasure): after `firstcontact erase --person` and a purge, a search
of every column of every table finds the person only in the audit log."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.audit.models import AuditLog
from app.auth.models import Role
from app.config import Settings
from app.history import writes
from app.history.models import Contact, Household, Person, PersonHousehold, Phone
from tests.conftest import MakeStaff
from tests.history.identify_support import call_at
from tests.history.support import days_ago
from tests.retention.support import firstcontact, where_found
from tests.thrive.support import auth, full_assessment

GONE = "P-ERASE"
NAME = "Morwenna Tregothnan"
NUMBER = "+447700900777"
KEPT = "P-KEEP"
KEPT_NAME = "Idris Pencarrow"
KEPT_NUMBER = "+447700900778"
# What a search for the person would look for: id, full name, each name, the number in the
# forms a body may hold it (E.164, national, the digits a form encodes after %2B).
NEEDLES = [
    GONE,
    NAME,
    "Morwenna",
    "Tregothnan",
    NUMBER,
    "07700 900777",
    "07700900777",
    "447700900777",
]


async def _seed(app: FastAPI) -> None:
    async with app.state.resources.sessions() as session, session.begin():
        session.add(Person(id=GONE, name=NAME, date_of_birth=date(1988, 4, 1)))
        session.add(Person(id=KEPT, name=KEPT_NAME, date_of_birth=date(1986, 2, 3)))
        session.add(Household(id="H-QUAY", uprn="100012340000", address="3 Quay Street, Fowey"))
        await session.flush()
        session.add_all(
            [
                Phone(e164=NUMBER, person_id=GONE),
                Phone(e164=KEPT_NUMBER, person_id=KEPT),
                PersonHousehold(person_id=GONE, household_id="H-QUAY", relationship=None),
                PersonHousehold(person_id=KEPT, household_id="H-QUAY", relationship="partner"),
            ]
        )
        await writes.invalidate(session, person_ids=[GONE, KEPT], household_ids=["H-QUAY"])
    async with app.state.resources.sessions() as session, session.begin():
        await writes.record_contact(
            session,
            contact_id="C-QUAY-1",
            occurred_at=days_ago(40),
            number=NUMBER,
            person_id=GONE,
            household_id="H-QUAY",
            incident_type="assault",
            victim=True,
            domestic_abuse=True,
        )
    async with app.state.resources.sessions() as session, session.begin():
        await writes.set_marker(
            session,
            marker_id="M-QUAY",
            subject_type="person",
            subject_id=GONE,
            kind="da_high_risk",
            set_at=days_ago(30),
        )


async def _her_call(client: httpx.AsyncClient, token: str) -> int:
    """Her call, with a narrative naming her, her link as the victim and an assessment."""
    call_id = await call_at(client, "H1", number="07700 900777")
    headers = auth(token)
    narrative = await client.post(
        f"/api/v1/calls/{call_id}/narrative",
        json={"text": "Morwenna says Idris pushed her; Tregothnan is her own name on 07700900777"},
        headers={**headers, "Idempotency-Key": "erase-test-narrative-1"},
    )
    assert narrative.status_code == 200, narrative.text
    link = await client.post(
        f"/api/v1/calls/{call_id}/subjects",
        json={"person_id": GONE, "role": "victim"},
        headers=headers,
    )
    assert link.status_code == 201, link.text
    words = {"text": f"{NAME} fears Idris will come back", "risk": "high"}
    body: dict[str, Any] = full_assessment(
        repeat_victim_check="yes",
        grade="priority",
        grade_reason="Morwenna is safe at a friend's house tonight",
    )
    body["elements"] = {name: words for name in body["elements"]}
    assessment = await client.put(f"/api/v1/calls/{call_id}/assessment", json=body, headers=headers)
    assert assessment.status_code == 201, assessment.text
    return call_id


async def test_erase_then_purge_leaves_the_person_only_in_the_audit(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff, settings: Settings
) -> None:
    await _seed(app)
    token = await make_staff("H1", Role.handler)
    await _her_call(client, token)
    # Her partner's call: his screen lists her as a member of the household.
    await call_at(client, "H1", number="07700 900778")

    async with app.state.resources.sessions() as session:
        before = await where_found(session, NEEDLES)
    # The search works: she is everywhere a call, a link and a lookup put her.
    for table in ("person", "phone", "contact", "marker", "call", "call_event", "call_context",
                  "call_subject", "call_thrive", "assessment", "alert"):  # fmt: skip
        assert table in before, table

    code, out, err = await firstcontact(settings, "erase", "--person", GONE)
    assert code == 0, err
    assert "persons: 1" in out
    code, out, err = await firstcontact(settings, "retention", "run")
    assert code == 0, err

    async with app.state.resources.sessions() as session:
        after = await where_found(session, NEEDLES)
        erasures = (
            await session.scalars(
                select(AuditLog).where(
                    (AuditLog.action == "erasure") & (AuditLog.subject_type == "person")
                )
            )
        ).all()
        kept = await session.get(Person, KEPT)
        contact = await session.get(Contact, "C-QUAY-1")
        kept_found = await where_found(session, [KEPT, KEPT_NAME, KEPT_NUMBER])
    assert set(after) == {"audit_log"}, after
    [erasure] = erasures
    assert erasure.subject_id == GONE and erasure.actor == "cli"
    assert NAME not in str(erasure.records)
    # The partner stays whole; her contact still counts, under a pseudonym with no number.
    assert kept is not None and kept.name == KEPT_NAME
    assert {"person", "phone", "call"} <= set(kept_found)
    assert contact is not None and contact.number is None
    assert contact.person_id is not None and contact.person_id.startswith("erased-")


async def test_erasing_an_unknown_person_changes_nothing(settings: Settings) -> None:
    code, _, err = await firstcontact(settings, "erase", "--person", "P-NOBODY")
    assert code == 1
    assert "no person with that id" in err
