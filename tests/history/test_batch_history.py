"""The history step over a batch: it reads ahead for all the batch's events and writes once at
the end, and the result must be what single events give, call for call: contexts, alerts,
flags, consultation records, contacts written back, and what later calls see. On both
backends.

Two mirrored worlds with the same people and history: one receives its calls as a single
signed batch (shuffled), the other one event at a time, in order. Among the calls, a caller
rings back after their first call ended, within the batch: the second call must see the
first as a prior contact, as it does one event at a time."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.audit.models import AuditLog
from app.calls.models import Call
from app.history.models import Alert, Contact
from app.history.stored_context import stored_context
from tests.history.support import add_contact, add_marker, add_people, kinds, ring
from tests.realtime.test_outbox import _drain
from tests.telephony.support import EVENTS_URL, event, post_signed

NUMBERS = {"b": "+441134960201", "s": "+441134960202"}
OTHER = {"b": "+441134960301", "s": "+441134960302"}


async def world(app: FastAPI, w: str, start: datetime) -> None:
    """A caller with a household member under an active DA marker and one prior victim
    contact; a second known caller; the same in each world."""
    await add_people(
        app,
        {f"{w}P1": [NUMBERS[w]], f"{w}P2": [], f"{w}P3": [OTHER[w]]},
        {f"{w}H1": [f"{w}P1", f"{w}P2"]},
    )
    await add_marker(app, f"{w}M1", subject_type="person", subject_id=f"{w}P2", kind="da_high_risk")
    await add_contact(
        app, f"{w}C1", number=NUMBERS[w], person_id=f"{w}P1", victim=True,
        occurred_at=start - timedelta(days=40),
    )  # fmt: skip


def calls(w: str, start: datetime) -> list[list[dict[str, Any]]]:
    """The events of each call, in time order: the caller rings (1) and rings back after
    that call ended (2); the other caller (3); a withheld caller (4)."""

    def call(n: int, at: datetime, number: str, types: tuple[str, ...]) -> list[dict[str, Any]]:
        presentation = "withheld" if number == "anonymous" else "allowed"
        caller = {"number": number, "presentation": presentation}
        out = []
        for i, type_ in enumerate(types):
            extra: dict[str, Any] = {}
            if type_ == "offered":
                extra = {"caller": caller, "called": "999"}
            elif type_ in ("ringing", "answered"):
                extra = {"handler_id": "H1001"}
            elif type_ == "ended":
                extra = {"cause": "normal_clearing"}
            out.append(event(f"{w}-{n}", type_, at + timedelta(seconds=10 * i), **extra))
        return out

    full = ("offered", "ringing", "answered", "ended")
    return [
        call(1, start, NUMBERS[w], full),
        call(2, start + timedelta(minutes=2), NUMBERS[w], ("offered", "ringing")),
        call(3, start + timedelta(seconds=5), OTHER[w], full),
        call(4, start + timedelta(seconds=7), "anonymous", full),
    ]


async def outcome(app: FastAPI, w: str) -> dict[str, Any]:
    """What history did for each call of world `w`, with the world's ids made neutral."""

    def neutral(value: Any) -> Any:
        return json.loads(json.dumps(value, default=str).replace(f'"{w}', '"'))

    found: dict[str, Any] = {}
    async with app.state.resources.sessions() as session:
        rows = (await session.scalars(select(Call).where(Call.external_id.like(f"{w}-%")))).all()
        for call in rows:
            context, alerts = await stored_context(session, call.id) or ({}, [])
            contact = (
                await session.scalars(select(Contact).where(Contact.call_id == call.id))
            ).one_or_none()
            audits = (
                await session.scalars(select(AuditLog).where(AuditLog.call_id == str(call.id)))
            ).all()
            found[call.external_id.removeprefix(w)] = {
                "flagged": call.flagged,
                "alerts": kinds(alerts),
                "alert_ids": all(isinstance(a["alert_id"], int) for a in alerts),
                "summary": context.get("number_summary"),
                "persons": neutral(sorted(p["id"] for p in context.get("persons", []))),
                "shown_contacts": len(context.get("number_contacts", [])),
                "contact": neutral(
                    contact and (contact.person_id, contact.household_id, contact.victim)
                ),
                "consulted": neutral(sorted((a.subject_type, a.subject_id) for a in audits)),
            }
    return found


async def test_a_batch_leaves_the_history_single_events_leave(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    await world(app, "b", start)
    await world(app, "s", start)
    batched = [e for call in calls("b", start) for e in call]
    random.Random(3).shuffle(batched)
    response = await post_signed(client, json.dumps(batched).encode(), url=EVENTS_URL + "/batch")
    assert response.status_code == 200 and response.json()["accepted"] == len(batched)
    for e in sorted(
        (e for call in calls("s", start) for e in call), key=lambda e: e["occurred_at"]
    ):
        assert (await post_signed(client, e)).status_code == 202

    batch, single = await outcome(app, "b"), await outcome(app, "s")
    assert batch == single
    # And what that is: the ring-back sees the first call; the household risk flags both.
    assert "household_risk" in batch["-1"]["alerts"] and batch["-1"]["flagged"]
    assert batch["-2"]["shown_contacts"] == batch["-1"]["shown_contacts"] + 1 == 2
    assert batch["-1"]["contact"] == ["P1", "H1", False]
    assert batch["-4"]["alerts"] == ["withheld_number"] and batch["-4"]["consulted"] == []
    assert all(c["alert_ids"] for c in batch.values())
    assert ["household", "H1"] in batch["-2"]["consulted"]

    # Later calls, one at a time, see every contact the batch wrote (the caches were
    # invalidated with it), as they do after single events.
    seen = {}
    for w in ("b", "s"):
        _, context, _ = await ring(app, client, f"{w}-later", NUMBERS[w])
        seen[w] = (context["number_summary"], len(context["number_contacts"]))
    assert seen["b"] == seen["s"] and seen["b"][1] == 2


async def test_a_batchs_alerts_reach_the_screens_with_the_ids_they_were_stored_with(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The alerts a transaction raises are inserted together (one statement on PostgreSQL,
    with the flags): each frame carries the ids its own call's rows were given."""
    start = datetime.now(UTC) - timedelta(minutes=10)
    await world(app, "b", start)
    resources = app.state.resources
    supervisors = await resources.broker.subscribe("supervisors", maxsize=100)
    offered = [call[0] for call in calls("b", start)]
    response = await post_signed(client, json.dumps(offered).encode(), url=EVENTS_URL + "/batch")
    assert response.status_code == 200 and response.json()["accepted"] == len(offered)
    frames = await _drain(supervisors, len(offered))
    shown = {f["call_id"]: sorted((a["alert_id"], a["kind"]) for a in f["data"]["alerts"])
             for f in frames if f["type"] == "call.offered"}  # fmt: skip
    async with resources.sessions() as session:
        rows = (await session.execute(
            select(Alert.call_id, Alert.id, Alert.kind).join(Call, Call.id == Alert.call_id)
            .where(Call.external_id.like("b-%"))
        )).all()  # fmt: skip
        flagged = set(
            await session.scalars(select(Call.id).where(Call.flagged, Call.external_id.like("b-%")))
        )
    stored: dict[int, list[tuple[int, str]]] = {call_id: [] for call_id in shown}
    for call_id, alert_id, kind in rows:
        stored[call_id].append((alert_id, kind))
    assert shown == {call_id: sorted(found) for call_id, found in stored.items()}
    # Three of the four calls raised alerts (the household's risk on the caller's two calls,
    # the withheld number): the insert's ids went back to the right rows, and each of those
    # calls is flagged (every one of these alerts flags its call).
    assert sorted(len(found) > 0 for found in shown.values()) == [False, True, True, True]
    assert flagged == {call_id for call_id, found in shown.items() if found}
