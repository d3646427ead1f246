"""Issue 13 point 1 through the store, on both backends: the default rules at their window
edges on real history, and the rules that read what the call is (MARAC repeat, repeat
missing) run again when the handler sets the incident type, pushing `alert.raised`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.audit.models import AuditLog
from app.auth.models import Role
from app.calls.models import Call
from app.history import alerts as alert_store
from app.history import writes
from app.history.models import Person, Phone
from tests.conftest import MakeStaff
from tests.thrive.support import (
    answered_call,
    auth,
    handler_messages,
    new_number,
    supervisor_messages,
)


def _e164(number: str) -> str:
    return "+44" + number.replace(" ", "")[1:]


def _ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def _person_on(app: FastAPI, person_id: str, e164: str) -> None:
    async with app.state.resources.sessions() as session, session.begin():
        session.add(Person(id=person_id, name="Test person"))
        await session.flush()
        session.add(Phone(e164=e164, person_id=person_id))
        await writes.invalidate(session, person_ids=[person_id])


async def _contacts(app: FastAPI, e164: str, *rows: tuple[str, float, dict[str, object]]) -> None:
    async with app.state.resources.sessions() as session, session.begin():
        for contact_id, days, fields in rows:
            await writes.record_contact(
                session, contact_id=f"{contact_id}-{e164}", occurred_at=_ago(days), number=e164,
                **fields,  # type: ignore[arg-type]
            )  # fmt: skip


async def _kinds(app: FastAPI, call_id: int) -> dict[str, str]:
    async with app.state.resources.sessions() as session:
        return {a.kind: a.severity for a in await alert_store.for_call(session, call_id)}


# (rule, earlier contacts, raised at ring time). Window edges are a day inside (364, 182) and
# a day outside (366, 184): the lookup reads whole days back from midnight.
DA = {"incident_type": "domestic_abuse", "domestic_abuse": True, "victim": True}
ASB = {"incident_type": "asb"}
VICTIM = {"incident_type": "theft", "victim": True}
EDGES = [
    ("repeat_victim", [("v", 364, VICTIM)], True),
    ("repeat_victim", [("v", 366, VICTIM)], False),
    ("da_escalation", [("d1", 10, DA), ("d2", 364, DA)], True),
    ("da_escalation", [("d1", 10, DA), ("d2", 366, DA)], False),
    ("asb_case_review", [("a1", 10, ASB), ("a2", 182, ASB)], True),
    ("asb_case_review", [("a1", 10, ASB), ("a2", 184, ASB)], False),
    ("repeat_caller", [("c1", 1, {}), ("c2", 2, {}), ("c3", 29, {})], True),
    ("repeat_caller", [("c1", 1, {}), ("c2", 2, {}), ("c3", 31, {})], False),
]


@pytest.mark.parametrize(
    ("rule", "rows", "raised"),
    EDGES,
    ids=[f"{r}-{rows[-1][1]}d-{'in' if up else 'out'}" for r, rows, up in EDGES],
)
async def test_window_edges_on_the_store(
    app: FastAPI,
    client: httpx.AsyncClient,
    rule: str,
    rows: list[tuple[str, float, dict[str, object]]],
    raised: bool,
) -> None:
    number = new_number()
    await _contacts(app, _e164(number), *rows)
    call_id = await answered_call(client, "H1", number=number)
    assert (rule in await _kinds(app, call_id)) is raised
    async with app.state.resources.sessions() as session:
        call = await session.get(Call, call_id)
    assert call is not None
    if rule == "repeat_caller" and raised:
        # Information only: shown, not a flag on the supervisor board.
        assert (await _kinds(app, call_id))["repeat_caller"] == "info"
        assert not call.flagged


async def test_a_da_incident_type_raises_marac_repeat_late_and_pushes_it(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    number = new_number()
    e164 = _e164(number)
    await _person_on(app, "PM1", e164)
    async with app.state.resources.sessions() as session, session.begin():
        # A MARAC referral ten months ago; the marker has since expired.
        await writes.set_marker(
            session, marker_id="MK-marac", kind="marac", subject_type="person",
            subject_id="PM1", set_at=_ago(300), expires_at=_ago(30),
        )  # fmt: skip
    call_id = await answered_call(client, "H1", number=number)
    assert "marac_repeat" not in await _kinds(app, call_id)  # nothing says DA at ring time

    url = f"/api/v1/calls/{call_id}/incident-type"
    response = await client.put(url, json={"incident_type": "burglary"}, headers=auth(token))
    assert response.status_code == 200, response.text
    assert "marac_repeat" not in await _kinds(app, call_id)
    assert await handler_messages(app, "H1", "alert.raised") == []

    response = await client.put(url, json={"incident_type": "domestic_abuse"}, headers=auth(token))
    assert response.status_code == 200, response.text
    assert (await _kinds(app, call_id))["marac_repeat"] == "high"
    assert "marac_repeat" in response.json()["alert_kinds"]
    pushed = await handler_messages(app, "H1", "alert.raised")
    assert len(pushed) == 1 and pushed[0]["call_id"] == call_id
    [alert] = pushed[0]["data"]["alerts"]
    assert alert["kind"] == "marac_repeat" and alert["evidence"] == ["MK-marac"]
    assert alert["alert_id"] and alert["reasons"][0] == "this call is domestic abuse"
    assert len(await supervisor_messages(app, "alert.raised")) == 1
    async with app.state.resources.sessions() as session:
        call = await session.get(Call, call_id)
        assert call is not None and call.flagged
        audits = list(
            await session.scalars(
                select(AuditLog).where(
                    AuditLog.call_id == str(call_id), AuditLog.subject_id == "PM1"
                )
            )
        )
    # The ring-time lookup and the re-run are both logged as consultations of the person.
    assert len(audits) == 2
    assert any("run again" in (a.justification or "") for a in audits)

    # Set again: the call already carries it, so nothing new is raised or pushed.
    response = await client.put(url, json={"incident_type": "domestic_abuse"}, headers=auth(token))
    assert response.status_code == 200, response.text
    assert len(await handler_messages(app, "H1", "alert.raised")) == 1


async def test_a_missing_person_call_after_an_earlier_episode_raises_repeat_missing(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    number = new_number()
    await _contacts(app, _e164(number), ("m1", 120, {"incident_type": "missing_person"}))
    call_id = await answered_call(client, "H1", number=number)
    assert "repeat_missing" not in await _kinds(app, call_id)
    response = await client.put(
        f"/api/v1/calls/{call_id}/incident-type",
        json={"incident_type": "missing_person"},
        headers=auth(token),
    )
    assert response.status_code == 200, response.text
    assert "repeat_missing" in await _kinds(app, call_id)
    assert [m["data"]["alerts"][0]["kind"] for m in await handler_messages(
        app, "H1", "alert.raised"
    )] == ["repeat_missing"]  # fmt: skip
