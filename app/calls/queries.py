"""Reading calls and their events: one call's events, lists of calls narrowed by a filter.
Never commits (split out of repository.py, which keeps the ingest and processing SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, String, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call, CallEventRow


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


def _involves(handler_id: str) -> ColumnElement[bool]:
    # `handlers` is a JSON list of staff ids (JSON text on SQLite, JSONB on PostgreSQL); a
    # quoted match on its text works on both. Staff ids are [A-Za-z0-9_.-]: escape `_`.
    pattern = '%"' + handler_id.replace("\\", "\\\\").replace("_", "\\_") + '"%'
    return or_(
        Call.handler_id == handler_id,
        cast(Call.handlers, String).like(pattern, escape="\\"),
    )


@dataclass(frozen=True)
class CallFilter:
    """What a list of calls is narrowed to (`None`: not narrowed), newest first, paged with
    `before_id` (the last id of the previous page)."""

    active: bool | None = None
    handler_id: str | None = None
    flagged: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 50


async def search(session: AsyncSession, where: CallFilter) -> Sequence[Call]:
    query = select(Call).order_by(Call.id.desc()).limit(where.limit)
    if where.active is True:
        query = query.where(Call.state != "ended")
    elif where.active is False:
        query = query.where(Call.state == "ended")
    if where.handler_id is not None:
        query = query.where(_involves(where.handler_id))
    if where.flagged is not None:
        query = query.where(Call.flagged.is_(where.flagged))
    if where.since is not None:
        query = query.where(Call.offered_at >= where.since)
    if where.until is not None:
        query = query.where(Call.offered_at < where.until)
    if where.before_id is not None:
        query = query.where(Call.id < where.before_id)
    return (await session.scalars(query)).all()
