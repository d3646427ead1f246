"""A call's first event on the locked path (app.calls.repository.create_with_event, issue
19): an offered that creates its call stores the call and the event in one statement; one
whose call exists, or whose event id is stored already (even by a transaction that commits
while it waits), is answered by the usual statements, as before."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.calls import service
from app.calls.models import Call, CallEventRow
from app.config import Settings
from app.resources import Resources
from app.telephony.events import CallEvent
from tests.calls.test_pipeline import fast, running
from tests.support.servers import eventually, waiting_for_a_lock
from tests.support.statements import statements_sent
from tests.telephony.support import event, lifecycle, post_signed

pytestmark = pytest.mark.production_only  # one statement on PostgreSQL; SQLite keeps two

_START = datetime.now(UTC) - timedelta(minutes=1)
_CREATE = "INSERT INTO call (source, external_id, flagged, frame_seq"  # the one statement
_LOCK = "DO UPDATE SET external_id"  # lock_or_create_call's


def _offered(external_id: str, **fields: Any) -> dict[str, Any]:
    caller = {"number": "07700 900777", "presentation": "allowed"}
    return event(external_id, "offered", _START, caller=caller, queue="emergency", **fields)


async def _rows(resources: Resources, external_id: str) -> tuple[Any, list[Any]]:
    async with resources.sessions() as session:
        call = await session.scalar(select(Call).where(Call.external_id == external_id))
        events = [] if call is None else list(
            await session.scalars(select(CallEventRow).where(CallEventRow.call_id == call.id))
        )  # fmt: skip
    return call, events


async def test_an_offered_that_creates_its_call_is_stored_in_one_statement(
    settings: Settings,
) -> None:
    async with running(fast(settings, telephony_express=False)) as (app, http):
        resources: Resources = app.state.resources
        async with statements_sent(resources.engine) as sent:
            answer = await post_signed(http, _offered("first-1"))
            statements = await sent()
        assert answer.status_code == 202
        assert sum(_CREATE in s for s in statements) == 1
        assert not any(_LOCK in s for s in statements)
        call, events = await _rows(resources, "first-1")
        assert answer.json() == {"status": "accepted", "call_id": call.id, "state": "offered"}
        assert (call.state, call.caller_e164, call.presentation, call.queue) == (
            "offered", "+447700900777", "allowed", "emergency"
        )  # fmt: skip
        assert call.offered_at is not None and call.frame_seq == 1  # the supervisors' message
        ((type_, before, after, processed),) = [
            (e.type, e.state_before, e.state_after, e.processed_at is not None) for e in events
        ]
        assert (type_, before, after, processed) == ("offered", None, "offered", True)
        # The rest of the call goes on from what it stored.
        ringing = lifecycle("first-1", _START)[1]
        assert (await post_signed(http, ringing)).status_code == 202
        call, events = await _rows(resources, "first-1")
        assert call.state == "ringing" and len(events) == 2


async def test_an_offered_whose_call_exists_takes_the_usual_statements(
    settings: Settings,
) -> None:
    async with running(fast(settings, telephony_express=False)) as (app, http):
        resources: Resources = app.state.resources
        offered, ringing = lifecycle("first-2", _START)[:2]
        assert (await post_signed(http, ringing)).status_code == 202  # the call, stored
        async with statements_sent(resources.engine) as sent:
            answer = await post_signed(http, offered)
            statements = await sent()
        assert answer.status_code == 202
        assert sum(_CREATE in s for s in statements) == 1  # tried: wrote nothing
        assert sum(_LOCK in s for s in statements) == 1
        call, events = await _rows(resources, "first-2")
        assert answer.json()["call_id"] == call.id
        assert sorted(e.type for e in events) == ["offered", "ringing"]
        # A replay of the same offered: the usual answer for an event stored already.
        again = await post_signed(http, offered)
        assert again.status_code == 200 and again.json()["call_id"] == call.id


async def test_an_event_id_stored_meanwhile_on_another_call_is_answered_as_before(
    settings: Settings,
) -> None:
    """The event's id is being stored on another call by a transaction that commits while
    the offered's statement waits on it: the call that statement created is undone, and the
    usual statements answer the event as one stored already."""
    async with running(fast(settings, telephony_express=False)) as (app, http):
        resources: Resources = app.state.resources
        reused = _offered("first-3b")
        async with resources.sessions() as holder, holder.begin():
            other = CallEvent.model_validate(_offered("first-3a", event_id=reused["event_id"]))
            stored = await service.ingest(
                holder, source="canonical", event=other, raw=json.dumps(reused).encode(),
                region="GB", lease_seconds=30.0, processed=True,
            )  # fmt: skip
            answer = asyncio.create_task(post_signed(http, reused))
            await eventually(
                lambda: waiting_for_a_lock(resources.engine),
                what="the offered's statement waiting on the uncommitted event",
            )
        got = await answer
        assert got.status_code == 200, got.text  # the original event's outcome
        assert got.json()["call_id"] == stored.call_id
        # What the usual statements leave: the call, created, with nothing merged into it
        # (not the state the undone statement gave it).
        call, events = await _rows(resources, "first-3b")
        assert events == [] and call.offered_at is None and call.presentation == "unavailable"
