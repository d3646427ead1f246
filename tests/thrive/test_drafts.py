"""The assessment draft over HTTP: who may read and write it, revisions (409 when stale),
bounds, "deferred", and the handler's wrap-up list it decides."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.auth.models import Role
from app.thrive.models import AssessmentDraft
from tests.conftest import MakeStaff
from tests.telephony.support import event, post_signed
from tests.thrive.support import answered_call, auth, full_assessment, transfer

FORM: dict[str, Any] = {
    "grade": "emergency",
    "grade_reason": "",
    "elements": {"threat": {"risk": "high", "text": "Offender may still be nearby"}},
    "repeat_victim_check": "yes",
    "victim": True,
}


async def _count(app: FastAPI, model: type, *where: object) -> int:
    async with app.state.resources.sessions() as session:
        value = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(value or 0)


def _url(call_id: int) -> str:
    return f"/api/v1/calls/{call_id}/draft"


async def _put(
    client: httpx.AsyncClient, call_id: int, token: str, revision: int, **form: Any
) -> httpx.Response:
    body = {**FORM, **form, "revision": revision}
    return await client.put(_url(call_id), json=body, headers=auth(token))


async def test_the_current_handler_saves_and_the_right_people_read(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    h1 = await make_staff("H1", Role.handler)
    h2 = await make_staff("H2", Role.handler)
    sup = await make_staff("S1", Role.supervisor)
    qa = await make_staff("Q1", Role.qa)
    call_id = await answered_call(client, "H1", external="draft-1")

    empty = await client.get(_url(call_id), headers=auth(h1))
    assert empty.status_code == 200, empty.text
    assert empty.json()["revision"] == 0 and empty.json()["grade"] is None

    saved = await _put(client, call_id, h1, 0)
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["revision"] == 1 and body["staff_id"] == "H1"
    assert body["elements"]["threat"] == {"risk": "high", "text": "Offender may still be nearby"}
    assert body["repeat_victim_check"] == "yes" and body["deferred"] is False

    mine = (await client.get(_url(call_id), headers=auth(h1))).json()
    assert mine["grade"] == "emergency" and mine["revision"] == 1
    # Supervisors read the current handler's draft, or a named handler's.
    assert (await client.get(_url(call_id), headers=auth(sup))).json()["revision"] == 1
    named = await client.get(_url(call_id), params={"handler": "H1"}, headers=auth(sup))
    assert named.json()["staff_id"] == "H1"

    for token, method in ((h2, "GET"), (qa, "GET"), (h2, "PUT"), (sup, "PUT"), (qa, "PUT")):
        if method == "GET":
            response = await client.get(_url(call_id), headers=auth(token))
        else:
            response = await _put(client, call_id, token, 1)
        assert response.status_code == 403, (method, response.text)
    other = await client.get(_url(call_id), params={"handler": "H2"}, headers=auth(h1))
    assert other.status_code == 403
    assert (await client.get(_url(987654), headers=auth(h1))).status_code == 404
    assert (await client.get(_url(call_id))).status_code == 401

    # After a transfer the first handler reads their draft but no longer writes; the new
    # handler starts their own.
    await transfer(client, "draft-1", "H2")
    assert (await client.get(_url(call_id), headers=auth(h1))).json()["revision"] == 1
    assert (await _put(client, call_id, h1, 1)).status_code == 403
    theirs = await client.get(_url(call_id), headers=auth(h2))
    assert theirs.status_code == 200 and theirs.json()["revision"] == 0
    assert (await _put(client, call_id, h2, 0, grade="priority")).json()["revision"] == 1
    assert (await client.get(_url(call_id), headers=auth(h1))).json()["grade"] == "emergency"
    assert await _count(app, AssessmentDraft) == 2


async def test_a_stale_revision_is_409_with_the_current_draft(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    h1 = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    assert (await _put(client, call_id, h1, 0)).json()["revision"] == 1
    # A second tab that also started from nothing, then one that read revision 1 late.
    for stale in (0, 2, 7):
        response = await _put(client, call_id, h1, stale, grade="scheduled")
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "draft_conflict"
        assert error["details"]["revision"] == 1 and error["details"]["grade"] == "emergency"
    newer = await _put(client, call_id, h1, 1, grade="scheduled")
    assert newer.status_code == 200 and newer.json()["revision"] == 2
    assert (await client.get(_url(call_id), headers=auth(h1))).json()["grade"] == "scheduled"


async def test_bad_drafts_are_422_and_store_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    h1 = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    for overrides in (
        {"surprise": 1},
        {"grade": "whenever"},
        {"grade_reason": "x" * 2001},
        {"elements": {"mood": {"risk": "low"}}},
        {"elements": {"harm": {"risk": "extreme"}}},
        {"elements": {"harm": {"risk": "low", "text": "x" * 4001}}},
        {"elements": {"harm": {"risk": "low", "notes": "x"}}},
        {"repeat_victim_check": "maybe"},
        {"victim": "perhaps"},
        {"revision": -1},
        {"revision": 2**40},
        {"revision": None},
        {"grade_reason": "nul \u0000 here"},
        {"grade_reason": "lone \ud800 surrogate"},
        {"elements": {"harm": {"risk": "low", "text": "nul \u0000"}}},
        {"elements": {"harm": {"risk": "low", "text": "\udfff"}}},
    ):
        body = {**FORM, "revision": 0, **overrides}
        # json.dumps escapes a lone surrogate as \\ud800, as a browser's JSON.stringify does.
        response = await client.put(
            _url(call_id),
            content=json.dumps(body),
            headers={**auth(h1), "Content-Type": "application/json"},
        )
        assert response.status_code == 422, (overrides, response.text)
        assert response.json()["error"]["details"], overrides
    assert await _count(app, AssessmentDraft) == 0
    for handler in ("H1\x00", "x" * 40, "../H1"):
        bad = await client.get(_url(call_id), params={"handler": handler}, headers=auth(h1))
        assert bad.status_code == 422, (handler, bad.text)
    # At the bounds it is accepted.
    edge = await _put(
        client,
        call_id,
        h1,
        0,
        grade_reason="r" * 2000,
        elements={e: {"risk": None, "text": "t" * 4000} for e in ("threat", "harm")},
    )
    assert edge.status_code == 200, edge.text


async def test_reads_are_audited_and_the_screen_restores_the_draft(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    h1 = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    assert (await _put(client, call_id, h1, 0)).status_code == 200
    where = (AuditLog.subject_type == "assessment_draft", AuditLog.call_id == str(call_id))
    assert await _count(app, AuditLog, *where, AuditLog.action == "collection") == 1
    assert await _count(app, AuditLog, *where, AuditLog.action == "consultation") == 0

    await client.get(_url(call_id), headers=auth(h1))
    screen = await client.get(f"/web/api/calls/{call_id}/screen", headers=auth(h1))
    assert screen.status_code == 200
    draft = screen.json()["screen"]["draft"]
    assert draft["revision"] == 1 and draft["elements"]["threat"]["risk"] == "high"
    listed = await client.get("/web/api/handler/calls", headers=auth(h1))
    assert [c["draft"]["revision"] for c in listed.json()["calls"]] == [1]
    assert await _count(app, AuditLog, *where, AuditLog.action == "consultation") == 3
    # A second save is no new collection.
    assert (await _put(client, call_id, h1, 1)).status_code == 200
    assert await _count(app, AuditLog, *where, AuditLog.action == "collection") == 1


async def test_an_ended_call_stays_in_wrap_up_until_submitted_or_deferred(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    h1 = await make_staff("H1", Role.handler)
    deferred_call = await answered_call(client, "H1", external="wrap-1")
    submitted_call = await answered_call(client, "H1", external="wrap-2")
    for external in ("wrap-1", "wrap-2"):
        ended = await post_signed(client, event(external, "ended", cause="normal_clearing"))
        assert ended.status_code == 202, ended.text

    async def listed() -> list[int]:
        response = await client.get("/web/api/handler/calls", headers=auth(h1))
        assert response.status_code == 200, response.text
        return [c["call"]["id"] for c in response.json()["calls"]]

    assert await listed() == [deferred_call, submitted_call]

    # Deferring is recorded in the draft, with the time; the call leaves the list.
    first = await _put(client, deferred_call, h1, 0, deferred=True)
    assert first.json()["deferred"] is True and first.json()["deferred_at"]
    again = await _put(client, deferred_call, h1, 1, deferred=True, grade="priority")
    assert again.json()["deferred_at"] == first.json()["deferred_at"]
    assert await listed() == [submitted_call]

    submitted = await client.post(
        f"/api/v1/calls/{submitted_call}/assessment", json=full_assessment(), headers=auth(h1)
    )
    assert submitted.status_code == 201, submitted.text
    assert await listed() == []

    # Taking the deferral back puts it back on the list.
    undone = await _put(client, deferred_call, h1, 2, deferred=False)
    assert undone.json()["deferred"] is False and undone.json()["deferred_at"] is None
    assert await listed() == [deferred_call]
