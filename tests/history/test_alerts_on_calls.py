"""Acceptance 1, 2, 4, 5 through the real signed webhook and the call pipeline, on both
backends: the history step looks the caller up, the rule engine plans alerts, history stores
them (and the context) on the call."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.audit.models import AuditLog
from app.calls.models import Call
from app.history.models import Contact
from app.history.write_back import complete_contact
from app.rules import loader
from tests.history.support import add_contact, add_marker, add_people, days_ago, kinds, ring

NUMBER = "+441134960101"


async def test_two_victim_contacts_in_a_year_raise_repeat_victim(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_people(app, {"P1": [NUMBER]})
    await add_contact(
        app, "C1", number=NUMBER, person_id="P1", victim=True, occurred_at=days_ago(20)
    )
    await add_contact(
        app, "C2", number=NUMBER, person_id="P1", victim=True, occurred_at=days_ago(200)
    )
    call_id, context, alerts = await ring(app, client, "rv-1", "0113 496 0101")
    assert "repeat_victim" in kinds(alerts)
    alert = next(a for a in alerts if a["kind"] == "repeat_victim")
    assert set(alert["evidence"]) >= {"C1", "C2"} and alert["rule"].startswith("repeat_victim@")
    assert context["persons"][0]["id"] == "P1"
    assert context["number_summary"]["victim_365d"] == 2
    async with app.state.resources.sessions() as session:
        call = await session.get(Call, call_id)
        assert call is not None and call.flagged  # high severity flags the call
        audits = list(
            await session.scalars(select(AuditLog).where(AuditLog.call_id == str(call_id)))
        )
    assert [(a.actor, a.subject_type, a.subject_id) for a in audits] == [
        (f"call:{call_id}", "person", "P1")
    ]
    assert set(audits[0].records["contacts"]) == {"C1", "C2"}


async def test_one_earlier_victim_contact_in_a_year_raises_it_one_older_does_not(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Forces count this call: one earlier victim contact in 365 days makes it the second.
    await add_people(app, {"P1": [NUMBER]})
    await add_contact(app, "C1", number=NUMBER, person_id="P1", occurred_at=days_ago(20))
    _, _, alerts = await ring(app, client, "rv-2", NUMBER)
    assert "repeat_victim" not in kinds(alerts)  # a contact, not as a victim
    # A victim contact 366 days ago is outside the 365-day window.
    await add_contact(
        app, "C0", number=NUMBER, person_id="P1", victim=True, occurred_at=days_ago(366)
    )
    _, context, alerts = await ring(app, client, "rv-3", NUMBER)
    assert "repeat_victim" not in kinds(alerts)
    assert context["persons"][0]["summary"]["victim_365d"] == 0
    # ... and one 364 days ago is inside it.
    await add_contact(
        app, "C3", number=NUMBER, person_id="P1", victim=True, occurred_at=days_ago(364)
    )
    _, _, alerts = await ring(app, client, "rv-4", NUMBER)
    alert = next(a for a in alerts if a["kind"] == "repeat_victim")
    assert alert["evidence"] == ["C3"]
    assert "incident 2 in 365 days" in alert["title"]


async def test_threshold_changed_in_a_rule_pack_changes_the_outcome(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    shipped = (loader.SHIPPED_DIR / "alerts.yaml").read_text()
    assert "      value: 1\n" in shipped  # the first: repeat_victim's
    (tmp_path / "alerts.yaml").write_text(
        shipped.replace("      value: 1\n", "      value: 3\n", 1).replace(
            'version: "', 'version: "9', 1
        )
    )
    await add_people(app, {"P1": [NUMBER]})
    for n, days in enumerate((10, 50)):
        await add_contact(
            app, f"C{n}", number=NUMBER, person_id="P1", victim=True, occurred_at=days_ago(days)
        )
    _, _, alerts = await ring(app, client, "th-1", NUMBER)
    assert "repeat_victim" in kinds(alerts)
    app.state.resources.rules = loader.load_paths([tmp_path])
    _, _, alerts = await ring(app, client, "th-2", NUMBER)
    assert "repeat_victim" not in kinds(alerts)
    await add_contact(
        app, "C9", number=NUMBER, person_id="P1", victim=True, occurred_at=days_ago(90)
    )
    _, _, alerts = await ring(app, client, "th-3", NUMBER)
    assert "repeat_victim" in kinds(alerts)
    assert next(a for a in alerts if a["kind"] == "repeat_victim")["rule"].endswith("@92026.11.2")


async def test_household_member_with_active_da_marker_raises_household_risk(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_people(app, {"P1": [NUMBER], "P2": []}, {"H1": ["P1", "P2"]})
    await add_marker(app, "M1", subject_type="person", subject_id="P2", kind="da_high_risk")
    _, context, alerts = await ring(app, client, "hr-1", NUMBER)
    assert "household_risk" in kinds(alerts)
    alert = next(a for a in alerts if a["kind"] == "household_risk")
    assert "M1" in alert["evidence"]
    assert "household member" in (alert["title"] + " ".join(alert["reasons"])).lower()
    member = next(p for p in context["persons"] if p["id"] == "P2")
    assert member["relationship"] == "household_member" and member["markers"][0]["active"]

    # Expire it: the next call no longer raises household risk.
    await add_marker(
        app, "M1", subject_type="person", subject_id="P2", kind="da_high_risk",
        expires_at=days_ago(1),
    )  # fmt: skip
    _, context, alerts = await ring(app, client, "hr-2", NUMBER)
    assert "household_risk" not in kinds(alerts)
    member = next(p for p in context["persons"] if p["id"] == "P2")
    assert member["markers"][0]["active"] is False


async def test_withheld_caller_gets_the_prompt_and_no_lookup(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_people(app, {"P1": [NUMBER]})
    await add_contact(app, "C1", number=NUMBER, person_id="P1", victim=True)
    call_id, context, alerts = await ring(app, client, "wh-1", "anonymous", presentation="withheld")
    assert kinds(alerts) == ["withheld_number"]
    assert context["looked_up"] is False and context["persons"] == []
    async with app.state.resources.sessions() as session:
        audits = list(
            await session.scalars(select(AuditLog).where(AuditLog.call_id == str(call_id)))
        )
    assert audits == []  # nothing was shown, nothing consulted


async def test_after_a_call_ends_the_next_call_sees_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_people(app, {"P1": [NUMBER]}, {"H1": ["P1"]})
    first, context, _ = await ring(
        app, client, "wb-1", NUMBER, types=("offered", "ringing", "ended")
    )
    assert context["number_summary"]["contacts_30d"] == 0
    async with app.state.resources.sessions() as session, session.begin():
        contact = (await session.scalars(select(Contact).where(Contact.call_id == first))).one()
        assert (contact.number, contact.person_id, contact.household_id) == (NUMBER, "P1", "H1")
        # The THRIVE+ assessment arrives later and completes it.
        await complete_contact(session, first, "assault", True, False, "officer_attended")
    _, context, _ = await ring(app, client, "wb-2", NUMBER)
    assert context["number_summary"]["contacts_30d"] == 1
    assert context["number_summary"]["victim_30d"] == 1
    assert context["number_contacts"][0]["incident_type"] == "assault"
    assert context["households"][0]["summary"]["contacts_30d"] == 1


async def test_offered_then_ringing_builds_the_context_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_people(app, {"P1": [NUMBER]})
    await add_contact(app, "C1", number=NUMBER, person_id="P1", victim=True)
    await add_contact(app, "C2", number=NUMBER, person_id="P1", victim=True)
    call_id, _, alerts = await ring(app, client, "once-1", NUMBER, types=("offered", "ringing"))
    async with app.state.resources.sessions() as session:
        audits = list(
            await session.scalars(select(AuditLog).where(AuditLog.call_id == str(call_id)))
        )
    assert len(audits) == 1 and kinds(alerts).count("repeat_victim") == 1
