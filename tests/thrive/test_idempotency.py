"""`Idempotency-Key` on every call-time write: a replay gets the stored answer with
`Idempotent-Replayed: true` and stores (and pushes) nothing again; the same key with another
request is 422; a malformed key is 422; a refused request leaves its key unused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app.auth.models import Role
from app.calls.models import Call
from app.db import utcnow
from app.housekeeping import Housekeeping
from app.idempotency.models import IdempotentRequest
from app.thrive.models import Assessment, AssessmentDraft, CallCue, CallThrive
from tests.conftest import MakeStaff
from tests.thrive.support import answered_call, auth, full_assessment, handler_messages


async def _count(app: FastAPI, model: type, *where: object) -> int:
    async with app.state.resources.sessions() as session:
        value = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(value or 0)


async def _state(app: FastAPI, call_id: int) -> CallThrive:
    async with app.state.resources.sessions() as session:
        row = await session.get(CallThrive, call_id)
    assert row is not None
    return row


@dataclass(frozen=True)
class Write:
    method: str
    path: str  # {call} is the call id
    body: dict[str, Any]
    status: int
    other_body: dict[str, Any]  # a different request for the reused-key check


WRITES: dict[str, Write] = {
    "narrative": Write(
        "POST",
        "/api/v1/calls/{call}/narrative",
        {"text": "She is pregnant and he has a knife", "mode": "append"},
        200,
        {"text": "Something else", "mode": "append"},
    ),
    "incident_type": Write(
        "PUT",
        "/api/v1/calls/{call}/incident-type",
        {"incident_type": "burglary"},
        200,
        {"incident_type": "theft"},
    ),
    "prompts_answered": Write(
        "POST",
        "/api/v1/calls/{call}/prompts/answered",
        {"ids": ["burglary.offender_present"]},
        200,
        {"ids": ["burglary.offender_present"], "answered": False},
    ),
    "advice_given": Write(
        "POST",
        "/api/v1/calls/{call}/advice/given",
        {"ids": ["burglary.lock_up"]},
        200,
        {"ids": ["burglary.dont_enter"]},
    ),
    "assessment_put": Write(
        "PUT",
        "/api/v1/calls/{call}/assessment",
        full_assessment(),
        201,
        full_assessment(grade="priority"),
    ),
    "assessment_post": Write(
        "POST",
        "/api/v1/calls/{call}/assessment",
        full_assessment(),
        201,
        full_assessment(grade="priority"),
    ),
    "qualifiers": Write(
        "PUT",
        "/api/v1/calls/{call}/qualifiers",
        {"qualifiers": ["domestic_abuse"]},
        200,
        {"qualifiers": ["hate_crime"], "qualifier_strands": {"hate_crime": ["race"]}},
    ),
    "draft": Write(
        "PUT",
        "/api/v1/calls/{call}/draft",
        {"revision": 0, "grade": "priority"},
        200,
        {"revision": 0, "grade": "scheduled"},
    ),
}


async def _effects(app: FastAPI, call_id: int) -> dict[str, Any]:
    """Everything a write can store or push, to compare before and after a replay."""
    state = await _state(app, call_id)
    async with app.state.resources.sessions() as session:
        call = await session.get(Call, call_id)
    assert call is not None
    return {
        "qualifiers": call.qualifiers,
        "narrative": state.narrative,
        "incident_type": state.incident_type,
        "prompts": list(state.prompts_answered),
        "advice": list(state.advice_given),
        "cues": await _count(app, CallCue, CallCue.call_id == call_id),
        "assessments": await _count(app, Assessment, Assessment.call_id == call_id),
        "drafts": await _count(app, AssessmentDraft, AssessmentDraft.call_id == call_id),
        "pushed": len(await handler_messages(app, "H1")),
        "keys": await _count(app, IdempotentRequest),
    }


async def _prepared_call(client: httpx.AsyncClient, token: str) -> int:
    """An answered call with an incident type (so advice and prompts can be marked)."""
    call_id = await answered_call(client, "H1")
    response = await client.put(
        f"/api/v1/calls/{call_id}/incident-type",
        json={"incident_type": "burglary"},
        headers=auth(token),
    )
    assert response.status_code == 200, response.text
    return call_id


def _send(
    client: httpx.AsyncClient, token: str, write: Write, call_id: int, key: str | None, body: Any
) -> Any:
    headers = auth(token) | ({"Idempotency-Key": key} if key is not None else {})
    return client.request(write.method, write.path.format(call=call_id), json=body, headers=headers)


@pytest.mark.parametrize("name", list(WRITES))
async def test_a_replay_returns_the_stored_outcome_and_stores_nothing_again(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff, name: str
) -> None:
    write = WRITES[name]
    token = await make_staff("H1", Role.handler)
    call_id = await _prepared_call(client, token)
    key = str(uuid.uuid4())

    first = await _send(client, token, write, call_id, key, write.body)
    assert first.status_code == write.status, first.text
    assert "idempotent-replayed" not in first.headers
    after_first = await _effects(app, call_id)
    assert after_first["keys"] == 1

    for _ in range(2):
        replay = await _send(client, token, write, call_id, key, write.body)
        assert replay.status_code == write.status, replay.text
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == first.json()
        assert await _effects(app, call_id) == after_first

    # The same key for a different request is refused, and changes nothing.
    reused = await _send(client, token, write, call_id, key, write.other_body)
    assert reused.status_code == 422, reused.text
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert await _effects(app, call_id) == after_first
    # Another key is another request.
    other = await _send(client, token, write, call_id, str(uuid.uuid4()), write.other_body)
    assert other.status_code in (write.status, 409), other.text  # a draft at revision 0: 409


async def test_an_assessment_replayed_at_once_is_one_version(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """The page's retry may overlap the original (a timed-out request still in flight)."""
    token = await make_staff("H1", Role.handler)
    call_id = await _prepared_call(client, token)
    write = WRITES["assessment_post"]
    key = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(_send(client, token, write, call_id, key, write.body) for _ in range(4))
    )
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 3
    assert len({r.json()["version"] for r in responses}) == 1
    assert await _count(app, Assessment, Assessment.call_id == call_id) == 1


@pytest.mark.parametrize(
    "key", ["short", "x" * 129, "has space in it", "semi;colon-key", "ünïcode-key".encode(), ""]
)
async def test_a_malformed_key_is_422_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff, key: str | bytes
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    write = WRITES["narrative"]
    headers: dict[str, str | bytes] = {**auth(token), "Idempotency-Key": key}
    response = await client.request(
        write.method, write.path.format(call=call_id), json=write.body, headers=headers
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_idempotency_key" and error["details"]["header"]
    assert await _count(app, CallThrive) == 0 and await _count(app, IdempotentRequest) == 0


async def test_a_refused_write_leaves_its_key_unused_and_keys_are_per_staff(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    h1 = await make_staff("H1", Role.handler)
    h2 = await make_staff("H2", Role.handler)
    call_id = await answered_call(client, "H1")
    advice: Callable[..., Any] = lambda token, key: _send(  # noqa: E731
        client, token, WRITES["advice_given"], call_id, key, WRITES["advice_given"].body
    )
    key = str(uuid.uuid4())
    # No incident type yet: refused, nothing remembered for the key.
    refused = await advice(h1, key)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "incident_type_not_set"
    assert await _count(app, IdempotentRequest) == 0
    # Someone else's write with the same key is theirs (and refused on its own merits).
    assert (await advice(h2, key)).status_code == 403
    await client.put(
        f"/api/v1/calls/{call_id}/incident-type",
        json={"incident_type": "burglary"},
        headers=auth(h1),
    )
    done = await advice(h1, key)
    assert done.status_code == 200 and "idempotent-replayed" not in done.headers
    assert (await _state(app, call_id)).advice_given == ["burglary.lock_up"]


async def test_unticking_takes_marks_off(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H1", Role.handler)
    call_id = await _prepared_call(client, token)
    base = f"/api/v1/calls/{call_id}"
    for path, ids in (
        ("advice/given", ["burglary.lock_up", "burglary.dont_enter"]),
        ("prompts/answered", ["burglary.offender_present"]),
    ):
        marked = await client.post(f"{base}/{path}", json={"ids": ids}, headers=auth(token))
        assert marked.status_code == 200, marked.text
    off = await client.post(
        f"{base}/advice/given",
        json={"ids": ["burglary.lock_up"], "given": False},
        headers=auth(token),
    )
    assert off.status_code == 200, off.text
    assert {a["id"] for a in off.json()["advice"] if a["given"]} == {"burglary.dont_enter"}
    off = await client.post(
        f"{base}/prompts/answered",
        json={"ids": ["burglary.offender_present"], "answered": False},
        headers=auth(token),
    )
    assert not any(p["answered"] for p in off.json()["prompts"])
    state = await _state(app, call_id)
    assert state.advice_given == ["burglary.dont_enter"] and state.prompts_answered == []
    # Unknown ids are still refused, marking or unmarking.
    for given in (True, False):
        bad = await client.post(
            f"{base}/advice/given",
            json={"ids": ["made.up"], "given": given},
            headers=auth(token),
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_advice_item"


async def test_housekeeping_forgets_answers_past_their_retention_only(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """Stored answers are personal data: kept while a page could still retry, then deleted."""
    token = await make_staff("H1", Role.handler)
    call_id = await _prepared_call(client, token)
    write = WRITES["narrative"]
    old_key, new_key = str(uuid.uuid4()), str(uuid.uuid4())
    assert (await _send(client, token, write, call_id, old_key, write.body)).status_code == 200
    assert (
        await _send(client, token, write, call_id, new_key, write.other_body)
    ).status_code == 200
    resources = app.state.resources
    keeper = Housekeeping(resources.sessions, resources.settings)
    # Age one answer past the retention, leave the other just inside it.
    async with resources.sessions() as session, session.begin():
        for key, age in ((old_key, keeper.retention + timedelta(seconds=1)),
                         (new_key, keeper.retention - timedelta(minutes=1))):  # fmt: skip
            await session.execute(
                update(IdempotentRequest)
                .where(IdempotentRequest.key == key)
                .values(created_at=utcnow() - age)
            )

    assert await keeper.run_once() == 1
    assert await _count(app, IdempotentRequest, IdempotentRequest.key == old_key) == 0
    assert await _count(app, IdempotentRequest, IdempotentRequest.key == new_key) == 1
    # The kept answer still replays; the forgotten key is a new request again.
    replay = await _send(client, token, write, call_id, new_key, write.other_body)
    assert replay.headers.get("idempotent-replayed") == "true"
    again = await _send(client, token, write, call_id, old_key, write.body)
    assert "idempotent-replayed" not in again.headers
