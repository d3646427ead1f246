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

from app.calls import lifecycle, queries
from app.calls import repository as repo
from app.calls.models import Call, CallEventRow
from app.calls.snapshot import CallSnapshot
from app.db import utcnow
from app.errors import NotFound
from app.telephony.events import CallEvent, EventType, Presentation
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

    def body(self) -> dict[str, object]:
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
    if row_id is None and event.type == EventType.offered:
        created = await _create_with_event(
            session, source, event, raw, region,
            processed=processed, attempts=attempts, lease_seconds=lease_seconds,
            last_error=last_error,
        )  # fmt: skip
        if created is not None:
            return created
    call = await repo.lock_or_create_call(session, source, event.call_id, event.type.value)
    before = repo.state_of(call)
    after = lifecycle.apply(before, fact_of(event, region))
    assert after.state is not None
    now = utcnow()
    values: dict[str, object] = {} if row_id is None else {"id": row_id}
    values.update(
        event_values(
            source,
            event,
            raw,
            call.id,
            before,
            after,
            now,
            processed=processed,
            attempts=attempts,
            lease_seconds=lease_seconds,
            last_error=last_error,
        )
    )
    stored_id = await repo.store_event(session, values, call.id, repo.state_values(after))
    if stored_id is None:
        original = await queries.find_event(session, source, event.event_id)
        assert original is not None  # the conflict was on exactly this key
        log.info("duplicate event", extra={"call": original.call_id, "event_row": original.id})
        return IngestOutcome(original.id, original.call_id, original.state_after, True)
    return IngestOutcome(
        stored_id, call.id, after.state, False, snapshot_after(call, after), before.state
    )


async def _create_with_event(
    session: AsyncSession,
    source: str,
    event: CallEvent,
    raw: bytes,
    region: str,
    **stored: Any,
) -> IngestOutcome | None:
    """`ingest` of a call's first event in one statement (`repo.create_with_event`); None,
    nothing written, when its call exists or it is stored already."""
    before = lifecycle.CallState()
    after = lifecycle.apply(before, fact_of(event, region))
    assert after.state is not None
    now = utcnow()
    values = event_values(source, event, raw, 0, before, after, now, **stored)
    del values["call_id"]  # the new call's
    call_values = {
        "source": source, "external_id": event.call_id, "flagged": False, "frame_seq": 0,
        "created_at": now, **repo.state_values(after),
    }  # fmt: skip
    created = await repo.create_with_event(session, call_values, values)
    if created is None:
        return None
    call, stored_id = created
    return IngestOutcome(stored_id, call.id, after.state, False, snapshot_after(call, after), None)


def event_values(
    source: str,
    event: CallEvent,
    raw: bytes,
    call_id: int,
    before: lifecycle.CallState,
    after: lifecycle.CallState,
    now: datetime,
    *,
    processed: bool,
    attempts: int = 1,
    lease_seconds: float = 0.0,
    last_error: str | None = None,
) -> dict[str, object]:
    """The stored event's columns (repo.EVENT_COLUMNS)."""
    assert after.state is not None
    return {
        "source": source,
        "event_id": event.event_id,
        "call_id": call_id,
        "type": event.type.value,
        "occurred_at": event.occurred_at,
        "seq": event.seq,
        "raw": raw,
        "canonical": event.model_dump(mode="json"),
        "state_before": before.state,
        "state_after": after.state,
        "received_at": now,
        "processed_at": now if processed else None,
        "attempts": attempts,
        "claimed_until": None if processed else now + timedelta(seconds=lease_seconds),
        "last_error": last_error,
    }


class BatchConflict(Exception):
    """An event of a batch could not be stored as planned (its event id is already stored on
    another call, by a concurrent transaction): the caller takes the batch one event at a
    time instead, which handles every such case."""


async def ingest_many(
    session: AsyncSession,
    *,
    source: str,
    events: list[tuple[CallEvent, bytes]],
    region: str,
) -> list[IngestOutcome]:
    """`ingest` (stored processed: the caller runs the steps in this transaction) for a
    batch, in four statements whatever its size: lock or create every call, find the events
    already stored, insert the new ones, write the calls' new states. Outcomes in the order
    of `events`. The events must come grouped by call, calls in the order their rows are to be
    locked, each call's events in the order they are to be merged.

    Raises BatchConflict (nothing is to be kept of the transaction) when an event turns out
    to be stored already in a way the call locks could not show."""
    first_type: dict[str, str] = {}
    for event, _ in events:
        first_type.setdefault(event.call_id, event.type.value)
    rows = await repo.lock_or_create_calls(session, source, list(first_type.items()))
    # Read under the call locks: an event of these calls stored by anyone has committed.
    stored = await repo.existing_events(session, source, [e.event_id for e, _ in events])
    states = {external_id: repo.state_of(row) for external_id, row in rows.items()}
    now = utcnow()
    planned: list[tuple[int, CallEvent, lifecycle.CallState, lifecycle.CallState]] = []
    new_rows: list[dict[str, object]] = []
    firsts: dict[str, int] = {}  # event id -> index of its first (stored) copy in the batch
    changed: set[str] = set()  # calls with a new event
    for index, (event, raw) in enumerate(events):
        if event.event_id in stored or event.event_id in firsts:
            continue
        firsts[event.event_id] = index
        call = rows[event.call_id]
        before = states[event.call_id]
        after = states[event.call_id] = lifecycle.apply(before, fact_of(event, region))
        planned.append((index, event, before, after))
        changed.add(event.call_id)
        new_rows.append(
            event_values(source, event, raw, call.id, before, after, now, processed=True)
        )
    ids = await repo.insert_events(session, new_rows)
    if len(ids) != len(new_rows):
        raise BatchConflict
    await repo.update_states(
        session,
        {rows[external_id].id: repo.state_values(states[external_id]) for external_id in changed},
    )
    outcomes: dict[int, IngestOutcome] = {}
    for index, event, before, after in planned:
        call = rows[event.call_id]
        assert after.state is not None
        outcomes[index] = IngestOutcome(
            ids[event.event_id], call.id, after.state, False, snapshot_after(call, after),
            before.state,
        )  # fmt: skip
    result: list[IngestOutcome] = []
    for index, (event, _) in enumerate(events):
        if index in outcomes:
            result.append(outcomes[index])
            continue
        original = stored.get(event.event_id)
        if original is not None:
            log.info("duplicate event", extra={"call": original.call_id, "event_row": original.id})
            result.append(IngestOutcome(original.id, original.call_id, original.state_after, True))
        else:  # a second copy within the batch: the first copy's outcome
            first = outcomes[firsts[event.event_id]]
            result.append(IngestOutcome(first.event_row_id, first.call_id, first.state, True))
    return result


def snapshot_after(call: repo.CallKeys, state: lifecycle.CallState) -> CallSnapshot:
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
        ringing_at=state.ringing_at,
    )


async def get_call(session: AsyncSession, call_id: int) -> Call:
    call = await session.get(Call, call_id)
    if call is None:
        raise CallNotFound("no such call")
    return call


async def events_of(session: AsyncSession, call_id: int) -> Sequence[CallEventRow]:
    return await queries.events_of(session, call_id)


async def search(session: AsyncSession, where: queries.CallFilter) -> Sequence[Call]:
    """Calls, newest first, narrowed by `where`."""
    return await queries.search(session, where)
