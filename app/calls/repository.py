"""SQL of the calls domain. Never commits: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.lifecycle import CallState
from app.calls.models import Call, CallEventRow
from app.db import utcnow


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


async def lock_or_create_call(
    session: AsyncSession, source: str, external_id: str, first_state: str
) -> Call:
    """The call row for (source, external_id), created if new, locked for this transaction.

    One statement either way: concurrent first events of a call (several workers) cannot
    create it twice, and the row lock serialises their merges (PostgreSQL; SQLite has one
    writer at a time anyway).
    """
    now = utcnow()
    stmt = _insert(session, Call).values(
        source=source,
        external_id=external_id,
        state=first_state,
        presentation="unavailable",
        handlers=[],
        marks={},
        flagged=False,
        created_at=now,
        updated_at=now,
    )
    # A no-op update (the same value) that takes the row lock and returns the row. Not
    # `stmt.excluded`: building that namespace proxies every column on every request.
    stmt = stmt.on_conflict_do_update(
        index_elements=[Call.source, Call.external_id],
        set_={"external_id": external_id},
    ).returning(Call)
    result = await session.execute(stmt, execution_options={"populate_existing": True})
    call: Call = result.scalar_one()
    return call


def state_of(call: Call) -> CallState:
    if call.offered_at is None:  # every merged event sets offered_at: nothing merged yet
        return CallState()
    return CallState(
        state=call.state,
        caller_e164=call.caller_e164,
        presentation=call.presentation,
        called=call.called,
        queue=call.queue,
        handler_id=call.handler_id,
        handlers=tuple(call.handlers or ()),
        offered_at=call.offered_at,
        ringing_at=call.ringing_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        end_cause=call.end_cause,
        marks=dict(call.marks or {}),
    )


def store_state(call: Call, state: CallState) -> None:
    assert state.state is not None
    call.state = state.state
    call.caller_e164 = state.caller_e164
    call.presentation = state.presentation
    call.called = state.called
    call.queue = state.queue
    call.handler_id = state.handler_id
    call.handlers = list(state.handlers)
    call.offered_at = state.offered_at
    call.ringing_at = state.ringing_at
    call.answered_at = state.answered_at
    call.ended_at = state.ended_at
    call.end_cause = state.end_cause
    call.marks = state.marks
    call.updated_at = utcnow()


async def insert_event(session: AsyncSession, **values: Any) -> int | None:
    """Insert an event; None when (source, event_id) is already stored."""
    stmt = (
        _insert(session, CallEventRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[CallEventRow.source, CallEventRow.event_id])
        .returning(CallEventRow.id)
    )
    new_id: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return new_id


async def find_event(session: AsyncSession, source: str, event_id: str) -> CallEventRow | None:
    row: CallEventRow | None = await session.scalar(
        select(CallEventRow).where(CallEventRow.source == source, CallEventRow.event_id == event_id)
    )
    return row


async def events_of(session: AsyncSession, call_id: int) -> Sequence[CallEventRow]:
    rows = await session.scalars(
        select(CallEventRow)
        .where(CallEventRow.call_id == call_id)
        .order_by(CallEventRow.occurred_at, CallEventRow.id)
    )
    return rows.all()


# --- processing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    call_id: int


async def mark_processed(session: AsyncSession, event_row_id: int) -> CallEventRow | None:
    """Take the event for processing in this transaction: the row stays locked until commit,
    so a concurrent processor (another worker's sweeper) waits, then finds it done."""
    result = await session.execute(
        update(CallEventRow)
        .where(CallEventRow.id == event_row_id, CallEventRow.processed_at.is_(None))
        .values(processed_at=utcnow(), claimed_until=None, last_error=None)
        .returning(CallEventRow),
        execution_options={"populate_existing": True},
    )
    row: CallEventRow | None = result.scalar_one_or_none()
    return row


async def record_failure(
    session: AsyncSession, event_row_id: int, error: str, retry_in: float
) -> None:
    await session.execute(
        update(CallEventRow)
        .where(CallEventRow.id == event_row_id, CallEventRow.processed_at.is_(None))
        .values(last_error=error[:200], claimed_until=utcnow() + timedelta(seconds=retry_in))
    )


async def claim_due(session: AsyncSession, lease: float, limit: int) -> list[Claimed]:
    """Claim up to `limit` accepted, unprocessed events whose lease or retry delay is over.

    One UPDATE: on PostgreSQL the inner SELECT skips rows another worker is claiming right
    now (SKIP LOCKED), and the outer WHERE re-checks the condition after any wait; on SQLite
    the statement runs under the single writer lock. Either way an event is claimed once.
    """
    now = utcnow()
    due = and_(
        CallEventRow.processed_at.is_(None),
        or_(CallEventRow.claimed_until.is_(None), CallEventRow.claimed_until < now),
    )
    inner = select(CallEventRow.id).where(due).order_by(CallEventRow.id).limit(limit)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        inner = inner.with_for_update(skip_locked=True)
    result = await session.execute(
        update(CallEventRow)
        .where(CallEventRow.id.in_(inner.scalar_subquery()), due)
        .values(
            claimed_until=now + timedelta(seconds=lease),
            attempts=CallEventRow.attempts + 1,
        )
        .returning(CallEventRow.id, CallEventRow.call_id)
    )
    return sorted((Claimed(r.id, r.call_id) for r in result), key=lambda c: c.id)


async def count_unprocessed(session: AsyncSession) -> int:
    value = await session.scalar(
        select(func.count()).select_from(CallEventRow).where(CallEventRow.processed_at.is_(None))
    )
    return int(value or 0)


# --- reading ----------------------------------------------------------------------------


def _involves(handler_id: str) -> Any:
    # `handlers` is a JSON list of staff ids (JSON text on SQLite, JSONB on PostgreSQL); a
    # quoted match on its text works on both. Staff ids are [A-Za-z0-9_.-]: escape `_`.
    pattern = '%"' + handler_id.replace("\\", "\\\\").replace("_", "\\_") + '"%'
    return or_(
        Call.handler_id == handler_id,
        cast(Call.handlers, String).like(pattern, escape="\\"),
    )


def involves(call: Call, handler_id: str) -> bool:
    return call.handler_id == handler_id or handler_id in (call.handlers or [])


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
    query = select(Call).order_by(Call.id.desc()).limit(limit)
    if active is True:
        query = query.where(Call.state != "ended")
    elif active is False:
        query = query.where(Call.state == "ended")
    if handler_id is not None:
        query = query.where(_involves(handler_id))
    if flagged is not None:
        query = query.where(Call.flagged.is_(flagged))
    if since is not None:
        query = query.where(Call.offered_at >= since)
    if until is not None:
        query = query.where(Call.offered_at < until)
    if before_id is not None:
        query = query.where(Call.id < before_id)
    return (await session.scalars(query)).all()
