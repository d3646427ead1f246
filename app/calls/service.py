"""Accepting call events: store each once, merge it into its call, hand it to processing.

`ingest` works in the caller's transaction and never commits: the request commits, and only
then answers 2xx (accepted means durable) and starts processing (`after_commit`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import lifecycle
from app.calls import repository as repo
from app.calls.models import Call, CallEventRow
from app.calls.snapshot import CallSnapshot
from app.db import utcnow
from app.errors import NotFound
from app.telephony.events import CallEvent, Presentation
from app.telephony.numbers import normalise

log = logging.getLogger(__name__)


class CallNotFound(NotFound):
    status, code = 404, "call_not_found"


@dataclass(frozen=True)
class IngestOutcome:
    """What the webhook answers; a replayed event gets the original outcome again."""

    event_row_id: int
    call_id: int
    state: str  # the call's state right after this event was merged
    duplicate: bool
    # Set on a new event only: the call after this event (locked in this transaction) and its
    # state before it, for processing in the same transaction (`Pipeline.accept`).
    call: CallSnapshot | None = None
    previous_state: str | None = None

    def body(self) -> dict[str, Any]:
        return {"status": "accepted", "call_id": self.call_id, "state": self.state}


def fact_of(event: CallEvent, region: str) -> lifecycle.Fact:
    """The lifecycle's view of an event, with the caller number normalised."""
    has_caller = "caller" in event.model_fields_set
    caller = normalise(event.caller.number, event.caller.presentation, region)
    return lifecycle.Fact(
        event_id=event.event_id,
        type=event.type,
        occurred_at=event.occurred_at,
        seq=event.seq,
        has_caller=has_caller,
        caller_e164=caller.e164 if has_caller else None,
        presentation=caller.presentation if has_caller else Presentation.unavailable,
        called=event.called,
        queue=event.queue,
        handler_id=event.handler_id,
        cause=event.cause,
    )


async def ingest(
    session: AsyncSession,
    *,
    source: str,
    event: CallEvent,
    raw: bytes,
    region: str,
    lease_seconds: float,
    processed: bool = False,
    attempts: int = 1,
    last_error: str | None = None,
    row_id: int | None = None,
) -> IngestOutcome:
    """Store `event` once (idempotent on (source, event_id)) and merge it into its call.

    `processed=True`: the caller runs the steps in this same transaction (`Pipeline.accept`),
    so the event is stored already processed and commits with what the steps wrote, or not at
    all. Otherwise the stored event is leased to this process for `lease_seconds` (its
    processing after the commit is not raced by a sweeper, or, after a failed inline attempt,
    the retry delay); if this process dies first, the lease runs out and any worker's sweeper
    picks the event up. `row_id`: store the event under this id (taken from the sequence
    by a rolled-back attempt: the stored event keeps the id its first processing saw).
    """
    call = await repo.lock_or_create_call(session, source, event.call_id, event.type.value)
    before = repo.state_of(call)
    after = lifecycle.apply(before, fact_of(event, region))
    assert after.state is not None
    now = utcnow()
    values: dict[str, Any] = {} if row_id is None else {"id": row_id}
    values.update(
        source=source,
        event_id=event.event_id,
        call_id=call.id,
        type=event.type.value,
        occurred_at=event.occurred_at,
        seq=event.seq,
        raw=raw,
        canonical=event.model_dump(mode="json"),
        state_before=before.state,
        state_after=after.state,
        received_at=now,
        processed_at=now if processed else None,
        attempts=attempts,
        claimed_until=None if processed else now + timedelta(seconds=lease_seconds),
        last_error=last_error,
    )
    stored_id = await repo.store_event(session, values, call.id, repo.state_values(after))
    if stored_id is None:
        original = await repo.find_event(session, source, event.event_id)
        assert original is not None  # the conflict was on exactly this key
        log.info("duplicate event", extra={"call": original.call_id, "event_row": original.id})
        return IngestOutcome(original.id, original.call_id, original.state_after, True)
    return IngestOutcome(
        stored_id, call.id, after.state, False, snapshot_after(call, after), before.state
    )


def snapshot_after(call: Any, state: lifecycle.CallState) -> CallSnapshot:
    """The call as later steps see it: its row (ids, source) with `state` merged in."""
    assert state.state is not None
    return CallSnapshot(
        id=call.id,
        source=call.source,
        external_id=call.external_id,
        state=state.state,
        caller_e164=state.caller_e164,
        presentation=state.presentation,
        called=state.called,
        queue=state.queue,
        handler_id=state.handler_id,
        handlers=tuple(state.handlers),
        offered_at=state.offered_at,
        answered_at=state.answered_at,
        ended_at=state.ended_at,
    )


async def get_call(session: AsyncSession, call_id: int) -> Call:
    call = await session.get(Call, call_id)
    if call is None:
        raise CallNotFound("no such call")
    return call


async def events_of(session: AsyncSession, call_id: int) -> Sequence[CallEventRow]:
    return await repo.events_of(session, call_id)


async def search(
    session: AsyncSession,
    *,
    active: bool | None = None,
    handler_id: str | None = None,
    flagged: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[Call]:
    """Calls, newest first, filtered; page with `before_id` (the last id of the previous page)."""
    return await repo.search(
        session,
        active=active,
        handler_id=handler_id,
        flagged=flagged,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
