"""The pipeline's backlog, for the scrape-time gauges of `GET /metrics`: events accepted
(stored) and not yet processed, and when the oldest of them arrived."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import CallEventRow

# Counted up to this many: a scrape stays cheap however deep the backlog (an alert fires
# long before it matters whether 100,000 or a million wait).
COUNT_CAP = 100_000


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """(events waiting, capped at COUNT_CAP; the oldest's arrival, None when none waits).
    Both read the sweeper's index (`processed_at` first)."""
    waiting = (
        select(CallEventRow.id)
        .where(CallEventRow.processed_at.is_(None))
        .limit(COUNT_CAP)
        .subquery()
    )
    count = await session.scalar(select(func.count()).select_from(waiting))
    oldest = await session.scalar(
        select(CallEventRow.received_at)
        .where(CallEventRow.processed_at.is_(None))
        .order_by(CallEventRow.id)
        .limit(1)
    )
    return int(count or 0), oldest
