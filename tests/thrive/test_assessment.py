"""The THRIVE+ assessment record over HTTP: validation (acceptance 4), versions, who may
write, the write-back to history (acceptance 5) and the QA export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.auth.models import Role
from app.history import alerts as alert_store
from app.history import writes
from app.history.models import Contact
from app.history.steps import caller_facts_for
from app.thrive.models import Assessment
from tests.conftest import MakeStaff
from tests.telephony.support import event, post_signed
from tests.thrive.support import (
    answered_call,
    auth,
    full_assessment,
    new_number,
    raise_alerts,
    transfer,
)


async def _count(app: FastAPI, model: type, *where: object) -> int:
    async with app.state.resources.sessions() as session:
        value = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(value or 0)


async def _submit(
    client: httpx.AsyncClient, call_id: int, token: str, method: str = "PUT", **overrides: Any
) -> httpx.Response:
    return await client.request(
        method,
        f"/api/v1/calls/{call_id}/assessment",
        json=full_assessment(**overrides),
        headers=auth(token),
    )


def _error(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.parametrize("kind", ["repeat_victim", "household_risk"])
async def test_repeat_victim_check_is_required_when_the_call_carried_the_alert(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff, kind: str
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    await raise_alerts(app, call_id, (kind, "low"))

    # Not a victim: the alert alone makes the check due.
    for answer in (None, "not_applicable"):
        error = _error(
            await _submit(client, call_id, token, repeat_victim_check=answer, victim=False)
        )
        assert error["code"] == "assessment_invalid"
        assert "repeat-victim check" in error["message"]
        assert kind.replace("_", " ") in error["message"]
        assert [d["field"] for d in error["details"]] == ["repeat_victim_check"]
    assert await _count(app, Assessment) == 0
    assert await _count(app, Contact, Contact.call_id == call_id) == 0

    done = await _submit(client, call_id, token, repeat_victim_check="no")
    assert done.status_code == 201, done.text
    assert done.json()["repeat_victim_check"] == "no"
    assert kind in done.json()["alert_kinds"]


async def test_without_such_alerts_the_check_may_be_not_applicable(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    await raise_alerts(app, call_id, ("repeat_caller", "low"))
    # The caller is not a victim (a victim makes the check due: test_assessment_rules).
    response = await _submit(client, call_id, token, repeat_victim_check=None, victim=False)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("severity", "suggested", "below"),
    [("high", "priority", "scheduled"), ("critical", "emergency", "priority")],
)
async def test_grading_below_the_alerts_suggestion_needs_a_reason(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_staff: MakeStaff,
    severity: str,
    suggested: str,
    below: str,
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    await raise_alerts(app, call_id, ("vulnerability_marker", severity), ("repeat_caller", "low"))

    error = _error(await _submit(client, call_id, token, grade=below))
    assert error["code"] == "assessment_invalid"
    assert f"suggest {suggested}" in error["message"] and "needs a reason" in error["message"]
    blank = _error(await _submit(client, call_id, token, grade=below, grade_reason="   "))
    assert blank["details"][0]["field"] == "grade_reason"
    assert await _count(app, Assessment) == 0

    same = await _submit(client, call_id, token, grade=suggested)
    assert same.status_code == 201, same.text
    reasoned = await _submit(
        client, call_id, token, grade=below, grade_reason="caller now safe at a neighbour's"
    )
    assert reasoned.status_code == 201, reasoned.text
    assert reasoned.json()["suggested_grade"] == suggested
    assert reasoned.json()["version"] == 2


async def test_bad_assessments_get_clear_422s_and_store_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    elements = full_assessment()["elements"]

    unknown_type = _error(await _submit(client, call_id, token, incident_type="alien_abduction"))
    assert unknown_type["code"] == "unknown_incident_type"
    assert "burglary" in unknown_type["details"]["known"]

    unknown_advice = _error(
        await _submit(client, call_id, token, advice_given=["burglary.lock_up", "made.up"])
    )
    assert unknown_advice["code"] == "assessment_invalid"
    assert (
        "made.up" in unknown_advice["message"]
        and "burglary.lock_up" not in unknown_advice["message"]
    )
    foreign = _error(await _submit(client, call_id, token, advice_given=["da.signal_word"]))
    assert "da.signal_word" in foreign["message"]

    missing = _error(
        await _submit(
            client, call_id, token, elements={k: v for k, v in elements.items() if k != "harm"}
        )
    )
    assert "missing: harm" in missing["message"]
    no_reason = _error(
        await _submit(
            client, call_id, token, elements={**elements, "threat": {"risk": "high", "text": ""}}
        )
    )
    assert no_reason["details"][0]["field"] == "elements.threat.text"

    for overrides in (
        {"grade": "whenever"},
        {"repeat_victim_check": "maybe"},
        {"victim": "perhaps"},
        {"elements": {**elements, "mood": {"risk": "low", "text": "x"}}},
        {"elements": {**elements, "harm": {"risk": "extreme", "text": "x"}}},
        {"surprise": 1},
    ):
        error = _error(await _submit(client, call_id, token, **overrides))
        assert error["code"] == "validation_error", overrides
        assert error["details"], overrides
    body = full_assessment()
    del body["victim"]
    response = await client.put(
        f"/api/v1/calls/{call_id}/assessment", json=body, headers=auth(token)
    )
    assert _error(response)["details"][0]["loc"][-1] == "victim"

    assert await _count(app, Assessment) == 0
    assert await _count(app, Contact, Contact.call_id == call_id) == 0


async def test_only_the_current_handler_submits(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    h1 = await make_staff("H1", Role.handler)
    h2 = await make_staff("H2", Role.handler)
    sup = await make_staff("S1", Role.supervisor)
    call_id = await answered_call(client, "H1", external="xfer-1")

    assert _error(await _submit(client, call_id, h2), 403)["code"] == "not_call_handler"
    assert _error(await _submit(client, call_id, sup), 403)["code"] == "not_call_handler"
    assert _error(await _submit(client, 987654, h1), 404)["code"] == "call_not_found"
    assert await _count(app, Assessment) == 0

    assert (await _submit(client, call_id, h1)).status_code == 201
    await transfer(client, "xfer-1", "H2")
    assert _error(await _submit(client, call_id, h1), 403)["code"] == "not_call_handler"
    second = await _submit(client, call_id, h2, method="POST", grade="priority")
    assert second.status_code == 201, second.text
    assert second.json()["submitted_by"] == "H2"
    # The earlier handler still reads what they wrote; an unrelated handler does not.
    h3 = await make_staff("H3", Role.handler)
    read = await client.get(f"/api/v1/calls/{call_id}/assessment", headers=auth(h1))
    assert read.status_code == 200
    assert (
        await client.get(f"/api/v1/calls/{call_id}/assessment", headers=auth(h3))
    ).status_code == 403


async def test_versions_keep_the_earlier_ones(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    sup = await make_staff("S1", Role.supervisor)
    call_id = await answered_call(client, "H1", external="ver-1")
    url = f"/api/v1/calls/{call_id}/assessment"
    none_yet = await client.get(url, headers=auth(sup))
    assert _error(none_yet, 404)["code"] == "assessment_not_found"

    first = await _submit(client, call_id, token, grade="scheduled")
    assert first.status_code == 201 and first.json()["version"] == 1
    # The call ends (history writes its contact back); its handler still completes the record.
    ended = await post_signed(client, event("ver-1", "ended", cause="normal_clearing"))
    assert ended.status_code == 202
    second = await _submit(
        client,
        call_id,
        token,
        method="POST",
        grade="priority",
        advice_given=["burglary.dont_enter", "burglary.keys_away", "burglary.lighting"],
    )
    assert second.status_code == 201

    latest = await client.get(url, headers=auth(sup))
    assert latest.status_code == 200
    body = latest.json()
    assert body["version"] == 2 and body["grade"] == "priority"
    assert body["advice_given"] == {
        "preservation": ["burglary.dont_enter"],
        "prevention": ["burglary.keys_away", "burglary.lighting"],
    }
    assert [v["version"] for v in body["history"]] == [1, 2]
    assert body["history"][0]["grade"] == "scheduled"
    assert body["history"][0]["advice_given"] == {
        "preservation": ["burglary.dont_touch_entry"],
        "prevention": ["burglary.lock_up"],
    }
    assert await _count(app, Assessment, Assessment.call_id == call_id) == 2
    async with app.state.resources.sessions() as session:
        contact = await writes.contact_for_call(session, call_id)
    assert contact is not None and contact.outcome == "priority" and contact.victim
    # Reading it is a consultation in the audit log.
    assert (
        await _count(
            app, AuditLog, AuditLog.subject_type == "assessment", AuditLog.action == "consultation"
        )
        == 1
    )


async def test_advice_marked_during_the_call_is_recorded_when_omitted(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    base = f"/api/v1/calls/{call_id}"
    await client.put(
        f"{base}/incident-type", json={"incident_type": "burglary"}, headers=auth(token)
    )
    await client.post(
        f"{base}/advice/given", json={"ids": ["burglary.keys_away"]}, headers=auth(token)
    )
    body = full_assessment()
    del body["advice_given"]
    response = await client.put(f"{base}/assessment", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    assert response.json()["advice_given"]["prevention"] == ["burglary.keys_away"]


async def test_submitting_counts_the_victim_contact_in_the_next_lookup(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """Acceptance 5: the write-back reaches the next caller lookup (through the caches)."""
    resources = app.state.resources
    token = await make_staff("H1", Role.handler)
    number = new_number()
    e164 = "+44" + number.replace(" ", "")[1:]
    async with resources.sessions() as session, session.begin():
        await writes.record_contact(
            session,
            contact_id="prior-1",
            occurred_at=datetime.now(UTC) - timedelta(days=40),
            number=e164,
            incident_type="burglary",
            victim=False,  # reported as a witness: not yet a victim
        )

    async def victim_contacts() -> int:
        async with resources.sessions() as session:
            facts = await caller_facts_for(session, resources, e164, "allowed")
        return sum(1 for c in facts.number_contacts if c.victim)

    first_call = await answered_call(client, "H1", number=number)
    async with resources.sessions() as session:
        kinds = {a.kind for a in await alert_store.for_call(session, first_call)}
    assert "repeat_victim" not in kinds
    assert await victim_contacts() == 0  # and the summary is now cached
    response = await _submit(client, first_call, token, victim=True, repeat_victim_check="no")
    assert response.status_code == 201, response.text
    assert await victim_contacts() == 1

    # The next call from the number is flagged as a repeat victim (one earlier victim contact
    # in 365 days: this call is the second).
    next_call = await answered_call(client, "H1", number=number)
    async with resources.sessions() as session:
        kinds = {a.kind for a in await alert_store.for_call(session, next_call)}
    assert "repeat_victim" in kinds


async def test_csv_export_one_row_per_latest_assessment(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    h1 = await make_staff("H1", Role.handler)
    qa = await make_staff("Q1", Role.qa)
    first = await answered_call(client, "H1")
    second = await answered_call(client, "H1")
    await raise_alerts(app, second, ("household_risk", "high"))
    await _submit(client, first, h1, grade="scheduled")
    await _submit(client, first, h1, grade="priority")
    await _submit(
        client, second, h1, grade="scheduled", grade_reason="safe now", repeat_victim_check="yes",
        elements={**full_assessment()["elements"], "harm": {"risk": "high", "text": "cut"}},
    )  # fmt: skip

    today = datetime.now(UTC).date()
    url = "/api/v1/assessments.csv"
    params = {"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    response = await client.get(url, params=params, headers=auth(qa))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["call_id"]) for r in rows] == [first, second]
    one, two = rows
    assert one["version"] == "2" and one["grade"] == "priority"
    assert one["preservation_given"] == "1" and one["prevention_given"] == "1"
    assert one["victim"] == "yes" and one["handler_id"] == "H1"
    assert two["suggested_grade"] == "priority" and two["below_suggested"] == "yes"
    assert two["grade_reason_given"] == "yes" and two["harm_risk"] == "high"
    assert two["repeat_victim_check"] == "yes" and "household_risk" in two["alert_kinds"]
    assert "safe now" not in response.text and "cut" not in response.text.split(",")

    earlier = {"from": "2020-01-01", "to": "2020-02-01"}
    empty = await client.get(url, params=earlier, headers=auth(qa))
    assert empty.status_code == 200 and len(empty.text.strip().splitlines()) == 1

    async with app.state.resources.sessions() as session:
        logged = (
            await session.scalars(
                select(AuditLog).where(AuditLog.action == "disclosure").order_by(AuditLog.id)
            )
        ).all()
        latest_ids = (
            await session.scalars(
                select(Assessment.id).where(
                    ((Assessment.call_id == first) & (Assessment.version == 2))
                    | ((Assessment.call_id == second) & (Assessment.version == 1))
                )
            )
        ).all()
    assert len(logged) == 2 and logged[0].actor == "staff:Q1"
    # Which records were disclosed (ids, never content); the empty export is logged too.
    assert sorted(logged[0].records["assessments"]) == sorted(latest_ids)
    assert logged[1].records["assessments"] == []

    assert (await client.get(url, params=params, headers=auth(h1))).status_code == 403
    for bad in (
        {"from": "yesterday", "to": "2026-01-01"},
        {"from": "2026-02-01", "to": "2026-01-01"},
    ):
        assert _error(await client.get(url, params=bad, headers=auth(qa)))["code"] == "bad_range"
    assert (
        await client.get(url, params={"from": "2026-01-01"}, headers=auth(qa))
    ).status_code == 422
