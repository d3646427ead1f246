"""The supervisor board's read, per-person acknowledgements, alert feedback and per-rule
precision (issue 15 points 3-6), over HTTP on both backends (`settings`: storage tests)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from app.auth.models import Role
from app.calls.models import Call
from app.cells import cell
from app.history.models import Alert
from tests.conftest import MakeStaff
from tests.telephony.support import event, post_signed
from tests.thrive.support import (
    answered_call,
    auth,
    full_assessment,
    handler_messages,
    new_number,
    raise_alerts,
    supervisor_messages,
)


async def _alert_ids(app: FastAPI, call_id: int) -> list[int]:
    async with app.state.resources.sessions() as session:
        return list(
            await session.scalars(
                select(Alert.id).where(Alert.call_id == call_id).order_by(Alert.id)
            )
        )


async def _board(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get("/web/api/board", headers=auth(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_acknowledgements_are_per_person(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    handler = await make_staff("H1", Role.handler)
    supervisor = await make_staff("S1", Role.supervisor)
    call_id = await answered_call(client, handler="H1")
    await raise_alerts(app, call_id, ("repeat_victim", "high"))
    (alert_id,) = await _alert_ids(app, call_id)

    # The supervisor first: recorded as theirs, and the handler's check is still due.
    first = await client.post(f"/api/v1/alerts/{alert_id}/ack", headers=auth(supervisor))
    assert first.status_code == 200, first.text
    assert [(a["staff_id"], a["role"]) for a in first.json()["acknowledgements"]] == [
        ("S1", "supervisor")
    ]
    screen = await client.get(f"/web/api/calls/{call_id}/screen", headers=auth(handler))
    (shown,) = screen.json()["screen"]["alerts"]
    assert [a["role"] for a in shown["acknowledgements"]] == ["supervisor"]

    # Then the handler: their own acknowledgement is recorded, beside the supervisor's.
    second = await client.post(f"/api/v1/alerts/{alert_id}/ack", headers=auth(handler))
    assert second.status_code == 200, second.text
    body = second.json()
    assert [(a["staff_id"], a["role"]) for a in body["acknowledgements"]] == [
        ("S1", "supervisor"),
        ("H1", "handler"),
    ]
    # The first acknowledgement stays on the alert (older clients read it).
    assert body["acknowledged_by"] == "S1"
    # Again: nothing new, nothing announced twice.
    again = await client.post(f"/api/v1/alerts/{alert_id}/ack", headers=auth(handler))
    assert len(again.json()["acknowledgements"]) == 2
    announced = await handler_messages(app, "H1", "alert.acknowledged")
    assert [len(m["data"]["acknowledgements"]) for m in announced] == [1, 2]
    assert len(await supervisor_messages(app, "alert.acknowledged")) == 2

    detail = await client.get(f"/web/api/calls/{call_id}/screen", headers=auth(supervisor))
    (alert,) = detail.json()["screen"]["alerts"]
    assert {a["staff_id"]: a["role"] for a in alert["acknowledgements"]} == {
        "S1": "supervisor",
        "H1": "handler",
    }


async def test_frames_carry_the_platform_call_id(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    await make_staff("H1", Role.handler)
    call_id = await answered_call(client, handler="H1", external="platform-abc-123")
    frames = await supervisor_messages(app, "call.offered", "call.ringing", "call.answered")
    assert frames and all(f["call_id"] == call_id for f in frames)
    for frame in frames:
        assert frame["data"]["call"]["platform_call_id"] == "platform-abc-123"
        assert frame["data"]["call"]["id"] == call_id  # nothing renamed
    ringing = await handler_messages(app, "H1", "call.ringing")
    assert ringing[0]["data"]["call"]["platform_call_id"] == "platform-abc-123"


async def _offered(client: httpx.AsyncClient, external: str, seconds_ago: int) -> int:
    start = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    caller = {"number": new_number(), "presentation": "allowed"}
    response = await post_signed(
        client, event(external, "offered", start, caller=caller, called="999", queue="emergency")
    )
    assert response.status_code == 202, response.text
    return int(response.json()["call_id"])


async def test_board_rows_counters_recently_ended_and_holding(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    supervisor = await make_staff("S1", Role.supervisor)
    handler = await make_staff("H1", Role.handler)
    await make_staff("H2", Role.handler)
    # Two calls waiting in the queue, the older offered 90 s ago.
    await _offered(client, "wait-1", 90)
    await _offered(client, "wait-2", 10)
    # One abandoned while queued (ended, never answered): counted, and listed because its
    # alert was never acknowledged.
    gone = await _offered(client, "gone-1", 50)
    await raise_alerts(app, gone, ("repeat_victim", "high"))
    ended = await post_signed(client, event("gone-1", "ended", cause="abandoned"))
    assert ended.status_code == 202
    # H1 holds two answered calls at once; one has a typed incident type and a DA qualifier.
    live = await answered_call(client, handler="H1", external="live-1")
    await answered_call(client, handler="H1", external="live-2")
    await raise_alerts(app, live, ("household_risk", "critical"), ("withheld_number", "low"))
    put = await client.put(
        f"/api/v1/calls/{live}/incident-type",
        json={"incident_type": "burglary"},
        headers=auth(handler),
    )
    assert put.status_code == 200, put.text
    qualified = await client.put(
        f"/api/v1/calls/{live}/qualifiers",
        json={"qualifiers": ["domestic_abuse"]},
        headers=auth(handler),
    )
    assert qualified.status_code == 200, qualified.text
    narrative = await client.post(
        f"/api/v1/calls/{live}/narrative",
        json={"text": "she is not allowed out and he controls her money", "mode": "replace"},
        headers=auth(handler),
    )
    assert narrative.status_code == 200, narrative.text
    cues = narrative.json()["cues_total"]
    assert cues >= 1  # coercive control: the board counts what the narrative raised
    # Answered and ended with no assessment: listed; answered, ended, assessed, no alerts: not.
    unassessed = await answered_call(client, handler="H2", external="done-1")
    await post_signed(client, event("done-1", "ended", cause="normal_clearing"))
    assessed = await answered_call(client, handler="H2", external="done-2")
    async with app.state.resources.sessions() as session, session.begin():
        await session.execute(update(Call).where(Call.id == assessed).values(handler_id="H1"))
    submitted = await client.post(
        f"/api/v1/calls/{assessed}/assessment", json=full_assessment(), headers=auth(handler)
    )
    assert submitted.status_code == 201, submitted.text
    await post_signed(client, event("done-2", "ended", cause="normal_clearing"))
    # Ended over an hour ago with an alert nobody acknowledged: gone from the list.
    old = await answered_call(client, handler="H2", external="old-1")
    await raise_alerts(app, old, ("repeat_victim", "high"))
    await post_signed(client, event("old-1", "ended", cause="normal_clearing"))
    async with app.state.resources.sessions() as session, session.begin():
        await session.execute(
            update(Call)
            .where(Call.id == old)
            .values(ended_at=datetime.now(UTC) - timedelta(minutes=61))
        )

    body = await _board(client, supervisor)
    counters = body["counters"]
    assert counters["waiting"] == 2
    assert 85 <= counters["longest_wait_seconds"] <= 85 + 600  # the older one, 90 s ago
    assert counters["abandoned_last_hour"] == 1
    assert [a["id"] for a in counters["abandoned"]] == [gone]
    assert body["escalate_after_seconds"] == app.state.resources.settings.alert_escalation_seconds

    rows = {row["id"]: row for row in body["calls"]}
    row = rows[live]
    assert row["incident_type"] == "burglary"
    assert row["qualifiers"] == ["domestic_abuse"]
    assert row["suggested_grade"] == "emergency"  # a critical alert
    assert row["grade"] is None and row["assessed"] is False
    assert row["summary"]["top_severity"] == "critical"
    assert row["platform_call_id"] == "live-1"
    assert row["ringing_at"] is not None
    assert row["cue_count"] == cues
    assert {h["id"]: h["answered_calls"] for h in body["handlers"]}["H1"] == 2

    recent = {row["id"]: row for row in body["recently_ended"]}
    assert set(recent) == {gone, unassessed}
    assert recent[unassessed]["assessed"] is False

    # Acknowledging the abandoned call's alert takes it off the list.
    (alert_id,) = await _alert_ids(app, gone)
    ack = await client.post(f"/api/v1/alerts/{alert_id}/ack", headers=auth(supervisor))
    assert ack.status_code == 200
    body = await _board(client, supervisor)
    assert {row["id"] for row in body["recently_ended"]} == {unassessed}
    assert body["counters"]["abandoned_last_hour"] == 1  # still abandoned


async def test_feedback_and_per_rule_precision(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    handler = await make_staff("H1", Role.handler)
    other = await make_staff("H2", Role.handler)
    supervisor = await make_staff("S1", Role.supervisor)
    admin = await make_staff("A1", Role.admin)
    first = await answered_call(client, handler="H1")
    second = await answered_call(client, handler="H1")
    await raise_alerts(app, first, ("repeat_victim", "high"), ("household_risk", "high"))
    await raise_alerts(app, second, ("repeat_victim", "high"), ("withheld_number", "low"))
    rv1, hr1 = await _alert_ids(app, first)
    rv2, _wn2 = await _alert_ids(app, second)
    # An alert raised 40 days ago, rated: outside the 30-day window.
    third = await answered_call(client, handler="H1")
    await raise_alerts(app, third, ("repeat_victim", "high"))
    (old,) = await _alert_ids(app, third)
    async with app.state.resources.sessions() as session, session.begin():
        await session.execute(
            update(Alert)
            .where(Alert.id == old)
            .values(raised_at=datetime.now(UTC) - timedelta(days=40))
        )

    async def rate(
        alert_id: int, verdict: str, token: str = handler, **extra: Any
    ) -> httpx.Response:
        return await client.post(
            f"/api/v1/alerts/{alert_id}/feedback",
            json={"verdict": verdict, **extra},
            headers=auth(token),
        )

    assert (await rate(rv1, "not_relevant")).status_code == 200
    changed = await rate(rv1, "helpful", reason="  the check found a prior report  ")
    assert changed.status_code == 200
    assert changed.json()["verdict"] == "helpful"
    assert changed.json()["reason"] == "the check found a prior report"
    assert (await rate(rv2, "wrong_person")).status_code == 200
    assert (await rate(hr1, "not_relevant")).status_code == 200
    assert (await rate(old, "helpful")).status_code == 200
    # Refused: another handler's call, an unknown verdict, an unknown alert, a long reason.
    assert (await rate(rv2, "helpful", token=other)).status_code == 403
    bad = await rate(rv2, "maybe")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    assert (await rate(999_999, "helpful")).status_code == 404
    assert (await rate(rv2, "helpful", reason="x" * 501)).status_code == 422
    # A supervisor reads precision; a handler cannot.
    assert (await client.get("/api/v1/alerts/precision", headers=auth(handler))).status_code == 403

    # The handler's screen shows their own verdict.
    screen = await client.get(f"/web/api/calls/{first}/screen", headers=auth(handler))
    verdicts = {
        a["alert_id"]: (a["my_feedback"] or {}).get("verdict")
        for a in screen.json()["screen"]["alerts"]
    }
    assert verdicts == {rv1: "helpful", hr1: "not_relevant"}

    response = await client.get("/api/v1/alerts/precision", headers=auth(supervisor))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["days"] == 30
    rules = {r["rule"]: r for r in body["rules"]}
    assert rules["repeat_victim"] == {
        "rule": "repeat_victim",
        "versions": ["test"],
        "raised": 2,  # the 40-day-old one is outside
        "rated": 2,
        "helpful": 1,
        "not_relevant": 0,
        "wrong_person": 1,
        "precision": 0.5,
    }
    assert rules["household_risk"]["precision"] == 0.0
    assert rules["withheld_number"]["rated"] == 0 and rules["withheld_number"]["precision"] is None
    wide = await client.get("/api/v1/alerts/precision?days=60", headers=auth(admin))
    assert {r["rule"]: r for r in wide.json()["rules"]}["repeat_victim"]["precision"] == round(
        2 / 3, 4
    )
    assert (
        await client.get("/api/v1/alerts/precision?days=0", headers=auth(admin))
    ).status_code == 422

    exported = await client.get("/api/v1/alerts/precision.csv", headers=auth(admin))
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(table[0]) == [
        "rule",
        "versions",
        "raised",
        "rated",
        "helpful",
        "not_relevant",
        "wrong_person",
        "precision",
    ]
    by_rule = {row["rule"]: row for row in table}
    assert by_rule["repeat_victim"]["precision"] == "0.5000"
    assert by_rule["withheld_number"]["precision"] == ""
    assert by_rule["household_risk"]["not_relevant"] == "1"


async def test_csv_cells_that_start_like_formulas_are_text(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    for dangerous in ("=cmd", "+1", "-2", "@sum", "\tx", "\rx"):
        assert cell(dangerous) == "'" + dangerous
    assert cell("repeat_victim") == "repeat_victim" and cell(3) == 3
    # A force's rule id that starts with "=" comes out as text in the export.
    supervisor = await make_staff("S1", Role.supervisor)
    await make_staff("H1", Role.handler)
    call_id = await answered_call(client, handler="H1")
    await raise_alerts(app, call_id, ("repeat_victim", "high"))
    async with app.state.resources.sessions() as session, session.begin():
        await session.execute(
            update(Alert).where(Alert.call_id == call_id).values(rule="=HYPERLINK(1)@2")
        )
    exported = await client.get("/api/v1/alerts/precision.csv", headers=auth(supervisor))
    (row,) = list(csv.DictReader(io.StringIO(exported.text)))
    assert row["rule"] == "'=HYPERLINK(1)"
