"""The monthly table's running sums (`qa_month_tally`), kept with the reviews.

The report's table over a year is a sum over every first review's answers: 720,000 answers
at 5,000 handlers x 3 calls a month, ~0.4 s of one core to join and group on PostgreSQL here
(bench/qa). A first review adds its answers to its month's sums in its own transaction, so
the table is read from 12 x standards rows. Concurrent first reviews of the same month wait
for each other's row lock on those few rows for the rest of their (short) transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_for
from app.qa.models import QaAnswer, QaMonthTally

TALLY: Table = QaMonthTally.__table__  # type: ignore[assignment]


async def add(session: AsyncSession, month: str, answers: Iterable[QaAnswer]) -> None:
    """Add a first review's answers to `month`'s sums (creating a standard's row at first)."""
    rows = [
        {
            "call_month": month,
            "standard": a.standard,
            "answered": 1,
            "met": int(a.met),
            "applicable": int(a.applicable),
        }
        for a in answers
    ]
    if not rows:
        return
    statement = upsert_for(session, TALLY).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[TALLY.c.call_month, TALLY.c.standard],
            set_={
                name: TALLY.c[name] + statement.excluded[name]
                for name in ("answered", "met", "applicable")
            },
        )
    )


async def read(session: AsyncSession, span: Sequence[str]) -> list[tuple[str, str, int, int, int]]:
    """(month, standard, answered, met, applicable) for the months from span[0] to span[-1]."""
    rows = await session.execute(
        select(
            TALLY.c.call_month, TALLY.c.standard, TALLY.c.answered, TALLY.c.met, TALLY.c.applicable
        ).where(TALLY.c.call_month >= span[0], TALLY.c.call_month <= span[-1])
    )
    return [(m, s, int(n), int(met), int(app)) for m, s, n, met, app in rows.all()]
