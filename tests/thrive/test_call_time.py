"""Call-time THRIVE+: incident type -> prompts and advice pushed; narrative -> cues pushed once.

Pushes are read back from the real broker (in-process or Redis streams) on the handler's and
the supervisors' channels, where the WebSocket hub reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.auth.models import Role
from app.logs import QUIET_LOGGERS, configure_logging
from app.thrive.models import CallCue, CallThrive
from tests.conftest import MakeStaff
from tests.thrive.support import (
    answered_call,
    auth,
    handler_messages,
    raise_alerts,
    supervisor_messages,
)

BURGLARY_PRESERVATION = {
    "burglary.dont_touch_entry",
    "burglary.dont_enter",
    "burglary.cover_outside",
    "burglary.keep_off_floors",
}
# Issue 14 merged the DA children question into child.seen_heard (shared with child_involved).
DA_PROMPTS = {"da.suspect_present", "child.seen_heard", "da.history_marac", "da.weapons"}


async def _count(app: FastAPI, model: type, *where: object) -> int:
    async with app.state.resources.sessions() as session:
        value = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(value or 0)


async def test_incident_type_pushes_prompts_and_advice_and_da_replaces_them(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """Acceptance 1."""
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    url = f"/api/v1/calls/{call_id}/incident-type"

    response = await client.put(url, json={"incident_type": "burglary"}, headers=auth(token))
    assert response.status_code == 200, response.text
    body = response.json()
    advice = {a["id"]: a["kind"] for a in body["advice"]}
    assert BURGLARY_PRESERVATION <= {i for i, k in advice.items() if k == "preservation"}
    assert "burglary.lock_up" in advice and advice["burglary.lock_up"] == "prevention"
    assert not DA_PROMPTS & {p["id"] for p in body["prompts"]}
    assert "burglary.offender_present" in {p["id"] for p in body["prompts"]}

    pushed_advice = await handler_messages(app, "H1", "advice.updated")
    pushed_prompts = await handler_messages(app, "H1", "prompts.updated")
    assert len(pushed_advice) == 1 and len(pushed_prompts) == 1
    assert pushed_advice[0]["call_id"] == call_id
    assert {a["id"] for a in pushed_advice[0]["data"]["advice"]} == set(advice)
    assert pushed_prompts[0]["data"]["incident_type"] == "burglary"
    # Supervisors see the same messages.
    assert len(await supervisor_messages(app, "advice.updated")) == 1

    response = await client.put(url, json={"incident_type": "domestic_abuse"}, headers=auth(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert not any(a["id"].startswith("burglary.") for a in body["advice"])
    assert {"da.keep_messages", "da.signal_word"} <= {a["id"] for a in body["advice"]}
    assert DA_PROMPTS <= {p["id"] for p in body["prompts"]}

    latest_advice = (await handler_messages(app, "H1", "advice.updated"))[-1]
    latest_prompts = (await handler_messages(app, "H1", "prompts.updated"))[-1]
    assert latest_advice["data"]["incident_type"] == "domestic_abuse"
    assert not any(a["id"].startswith("burglary.") for a in latest_advice["data"]["advice"])
    assert DA_PROMPTS <= {p["id"] for p in latest_prompts["data"]["prompts"]}


async def test_alert_kinds_add_their_prompts(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    await raise_alerts(app, call_id, ("repeat_victim", "high"))
    response = await client.put(
        f"/api/v1/calls/{call_id}/incident-type",
        json={"incident_type": "theft"},
        headers=auth(token),
    )
    assert response.status_code == 200, response.text
    prompts = {p["id"]: p for p in response.json()["prompts"]}
    assert prompts["alert.repeat_victim"]["reason"] == "alert"
    assert "repeat_victim" in response.json()["alert_kinds"]


async def test_unknown_incident_type_is_422_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    for body in ({"incident_type": "alien_abduction"}, {"incident_type": ""}, {}):
        response = await client.put(
            f"/api/v1/calls/{call_id}/incident-type", json=body, headers=auth(token)
        )
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] in ("unknown_incident_type", "validation_error")
    assert await _count(app, CallThrive) == 0
    assert await handler_messages(app, "H1", "prompts.updated", "advice.updated") == []


async def test_the_same_cue_is_pushed_once_and_the_narrative_is_never_logged(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """Acceptance 3: keystroke by keystroke, each cue goes out once; no narrative in logs."""
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    url = f"/api/v1/calls/{call_id}/narrative"
    narrative = (
        "Caller Zephyrine says her partner took her phone and the kids are upstairs. "
        "She is not sure of the address."
    )

    # The service's own logging set-up, at its most verbose, into a buffer.
    captured = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    with contextlib.redirect_stderr(captured):
        configure_logging("DEBUG", json_lines=True)
    new_cue_ids: list[str] = []
    try:
        # As typed, debounced: the whole text so far, growing a few words at a time.
        words = narrative.split(" ")
        for end in range(1, len(words) + 1):
            response = await client.post(
                url, json={"text": " ".join(words[:end])}, headers=auth(token)
            )
            assert response.status_code == 200, response.text
            new_cue_ids += [c["cue_id"] for c in response.json()["new_cues"]]
        # The same text again, and again as appended chunks: nothing new.
        again = await client.post(url, json={"text": narrative}, headers=auth(token))
        assert again.json()["new_cues"] == []
        # Bad requests must not leak it either.
        too_big = await client.post(url, json={"text": narrative * 1000}, headers=auth(token))
        assert too_big.status_code == 413
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)

    assert len(new_cue_ids) == len(set(new_cue_ids)), new_cue_ids
    pushed = await handler_messages(app, "H1", "cue.detected")
    pushed_ids = [m["data"]["cue_id"] for m in pushed]
    assert pushed_ids == new_cue_ids
    strands = {m["data"]["strand"] for m in pushed}
    assert "children_present" in strands, pushed
    child = next(m for m in pushed if m["data"]["strand"] == "children_present")
    assert any("kids" in w for w in child["data"]["matched"])
    assert await _count(app, CallCue, CallCue.call_id == call_id) == len(new_cue_ids)

    logs = captured.getvalue()
    # The capture saw the service's own lines about this narrative (ids only), so it works.
    assert "narrative read" in logs and f'"call": {call_id}' in logs
    for secret in ("Zephyrine", "kids are upstairs", "not sure of the address"):
        assert secret not in logs


async def test_cues_carry_their_strand_severity(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """A cue's severity (its strand's) is returned, pushed and read back with the call."""
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    response = await client.post(
        f"/api/v1/calls/{call_id}/narrative",
        json={"text": "He has a knife and the kids are upstairs"},
        headers=auth(token),
    )
    assert response.status_code == 200, response.text
    expected = {"weapons": "high", "children_present": "medium"}
    assert {c["strand"]: c["severity"] for c in response.json()["new_cues"]} == expected
    pushed = await handler_messages(app, "H1", "cue.detected")
    assert {m["data"]["strand"]: m["data"]["severity"] for m in pushed} == expected
    read = await client.get(f"/api/v1/calls/{call_id}/thrive", headers=auth(token))
    assert read.status_code == 200, read.text
    cues = {c["strand"]: c for c in read.json()["cues"]}
    assert {s: c["severity"] for s, c in cues.items()} == expected
    assert cues["weapons"]["strand_name"] == "Weapons mentioned"


async def test_appended_chunks_are_read_together(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    url = f"/api/v1/calls/{call_id}/narrative"
    first = await client.post(
        url,
        json={"text": "Caller heard a noise outside and the", "mode": "append"},
        headers=auth(token),
    )
    assert first.status_code == 200 and first.json()["new_cues"] == []
    second = await client.post(
        url, json={"text": " children are asleep upstairs.", "mode": "append"}, headers=auth(token)
    )
    assert second.status_code == 200, second.text
    assert "children_present" in {c["strand"] for c in second.json()["new_cues"]}
    async with app.state.resources.sessions() as session:
        stored = await session.get(CallThrive, call_id)
    assert stored is not None
    assert stored.narrative == "Caller heard a noise outside and the children are asleep upstairs."


async def test_narrative_over_the_limit_is_413_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    url = f"/api/v1/calls/{call_id}/narrative"
    limit = app.state.resources.settings.narrative_max_chars

    whole = await client.post(
        url, json={"text": "the kids " * (limit // 9 + 1)}, headers=auth(token)
    )
    assert whole.status_code == 413
    assert whole.json()["error"]["code"] == "narrative_too_large"
    assert str(limit) in whole.json()["error"]["message"]
    assert "kids" not in whole.text  # the text is never echoed back

    # Appending past the limit is refused too, and the earlier text is kept as it was.
    ok = await client.post(
        url, json={"text": "x" * (limit - 10), "mode": "append"}, headers=auth(token)
    )
    assert ok.status_code == 200
    over = await client.post(
        url, json={"text": "the kids are here", "mode": "append"}, headers=auth(token)
    )
    assert over.status_code == 413
    async with app.state.resources.sessions() as session:
        stored = await session.get(CallThrive, call_id)
    assert stored is not None and stored.narrative == "x" * (limit - 10)
    assert await _count(app, CallCue) == 0
    assert await handler_messages(app, "H1", "cue.detected") == []

    malformed = await client.post(url, json={"text": 42}, headers=auth(token))
    assert malformed.status_code == 422
    unknown_mode = await client.post(url, json={"text": "a", "mode": "x"}, headers=auth(token))
    assert unknown_mode.status_code == 422


async def test_only_the_calls_handler_writes_supervisors_read(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    h1 = await make_staff("H1", Role.handler)
    h2 = await make_staff("H2", Role.handler)
    sup = await make_staff("S1", Role.supervisor)
    call_id = await answered_call(client, "H1")
    put = {"json": {"incident_type": "burglary"}}
    for token in (h2, sup):
        response = await client.put(
            f"/api/v1/calls/{call_id}/incident-type", headers=auth(token), **put
        )
        assert response.status_code == 403, response.text
        response = await client.post(
            f"/api/v1/calls/{call_id}/narrative", json={"text": "the kids are here"},
            headers=auth(token),
        )  # fmt: skip
        assert response.status_code == 403
    assert await _count(app, CallThrive) == 0 and await _count(app, CallCue) == 0

    missing = await client.put("/api/v1/calls/999999/incident-type", headers=auth(h1), **put)
    assert missing.status_code == 404
    assert (await client.put("/api/v1/calls/1/incident-type", **put)).status_code == 401

    assert (
        await client.put(f"/api/v1/calls/{call_id}/incident-type", headers=auth(h1), **put)
    ).status_code == 200
    seen = await client.get(f"/api/v1/calls/{call_id}/thrive", headers=auth(sup))
    assert seen.status_code == 200 and seen.json()["incident_type"] == "burglary"
    hidden = await client.get(f"/api/v1/calls/{call_id}/thrive", headers=auth(h2))
    assert hidden.status_code == 403


async def test_marking_prompts_answered_and_advice_given(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    base = f"/api/v1/calls/{call_id}"
    early = await client.post(
        f"{base}/advice/given", json={"ids": ["burglary.lock_up"]}, headers=auth(token)
    )
    assert early.status_code == 422  # no incident type yet
    assert early.json()["error"]["code"] == "incident_type_not_set"
    await client.put(
        f"{base}/incident-type", json={"incident_type": "burglary"}, headers=auth(token)
    )

    bad = await client.post(
        f"{base}/advice/given", json={"ids": ["burglary.lock_up", "nope.nothing"]},
        headers=auth(token),
    )  # fmt: skip
    assert bad.status_code == 422 and "nope.nothing" in bad.json()["error"]["message"]
    foreign = await client.post(
        f"{base}/advice/given", json={"ids": ["da.signal_word"]}, headers=auth(token)
    )
    assert foreign.status_code == 422

    given = await client.post(
        f"{base}/advice/given", json={"ids": ["burglary.lock_up"]}, headers=auth(token)
    )
    assert given.status_code == 200
    marks = {a["id"]: a["given"] for a in given.json()["advice"]}
    assert marks["burglary.lock_up"] is True and marks["burglary.dont_enter"] is False

    answered = await client.post(
        f"{base}/prompts/answered", json={"ids": ["threat.where_who"]}, headers=auth(token)
    )
    assert answered.status_code == 200
    assert {p["id"] for p in answered.json()["prompts"] if p["answered"]} == {"threat.where_who"}
    unknown = await client.post(
        f"{base}/prompts/answered", json={"ids": ["da.weapons"]}, headers=auth(token)
    )
    assert unknown.status_code == 422  # not offered for a burglary without DA alerts

    state = (await client.get(f"{base}/thrive", headers=auth(token))).json()
    assert [a["id"] for a in state["advice"] if a["given"]] == ["burglary.lock_up"]
    assert json.dumps(state)  # serialisable as the page reads it


async def test_concurrent_posts_of_the_same_text_push_each_cue_once(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    text = {"text": "the kids are in the house and she is pregnant"}
    responses = await asyncio.gather(
        *[
            client.post(f"/api/v1/calls/{call_id}/narrative", json=text, headers=auth(token))
            for _ in range(4)
        ]
    )
    assert [r.status_code for r in responses] == [200] * 4
    returned = [c["cue_id"] for r in responses for c in r.json()["new_cues"]]
    pushed = [m["data"]["cue_id"] for m in await handler_messages(app, "H1", "cue.detected")]
    assert sorted(pushed) == sorted(returned) and len(set(pushed)) == len(pushed) >= 2


async def test_starting_a_narrative_is_audited_once_per_call(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """DPA s.62: the narrative's collection is logged (who, when, which call), once, not per
    keystroke post; the log holds ids only."""
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    url = f"/api/v1/calls/{call_id}/narrative"
    narrative = AuditLog.subject_type == "narrative"
    assert await _count(app, AuditLog, narrative) == 0

    for chunk in ("Caller says ", "her partner ", "took her phone."):
        response = await client.post(
            url, json={"text": chunk, "mode": "append"}, headers=auth(token)
        )
        assert response.status_code == 200, response.text

    async with app.state.resources.sessions() as session:
        rows = (await session.scalars(select(AuditLog).where(narrative))).all()
    assert [(r.actor, r.action, r.call_id) for r in rows] == [
        ("staff:H1", "collection", str(call_id))
    ]
    assert "partner" not in json.dumps(rows[0].records)
