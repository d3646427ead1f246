"""Generation counters for the summary cache, stored with the data.

Every history write bumps the counters of the scopes it changes *in its own transaction*; a
lookup reads the counters first and uses them in the cache key. Once a write has committed, no
process can build the old key again, so a stale summary is unreachable whichever cache holds it
(in-process in another worker, or Redis that was down during the write and came back).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_of, upsert
from app.db_direct import driver
from app.history.models import HistoryVersion

EVERYTHING = "*"  # bumped by imports and bulk loads: every summary changes


def number_scope(e164: str) -> str:
    return "n:" + e164


def household_scope(household_id: str) -> str:
    return "h:" + household_id


_BUMPED = "history_versions_bumped"


async def bump(session: AsyncSession, scopes: Iterable[str]) -> None:
    """Increment the counters of `scopes` (created at 1) in the session's transaction."""
    # Sorted: two writers touching overlapping scopes lock rows in the same order.
    ordered = sorted(set(scopes))
    if not ordered:
        return
    session.info[_BUMPED] = session.sync_session.get_transaction()
    dialect = dialect_of(session)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        stmt = upsert(HistoryVersion, dialect).values([{"scope": s, "version": 1} for s in chunk])
        stmt = stmt.on_conflict_do_update(
            index_elements=[HistoryVersion.scope],
            set_={"version": HistoryVersion.version + 1},
        )
        await session.execute(stmt)


async def read(session: AsyncSession, scopes: list[str]) -> dict[str, int]:
    """Current counters of `scopes` (0 for a scope never written)."""
    direct = await driver(session)
    rows: Iterable[Any]
    if direct is not None:
        rows = await direct.fetch(_READ_PG, scopes)
    else:
        conn = await session.connection()
        rows = await conn.execute(_READ, {"scopes": scopes})
    found = {scope: int(version) for scope, version in rows}
    return {scope: found.get(scope, 0) for scope in scopes}


# Built once and run on the session's connection: on every ring, building the query and going
# through the ORM session cost twice what running it does (issue 19). Counters are written
# with statements (`bump`), never as pending ORM objects, so skipping the autoflush changes
# nothing.
_READ = select(HistoryVersion.scope, HistoryVersion.version).where(
    HistoryVersion.scope.in_(bindparam("scopes", expanding=True))
)
# On PostgreSQL, straight through asyncpg (app.db_direct), one text for any number of scopes.
_READ_PG = "SELECT scope, version FROM history_version WHERE scope = ANY($1::varchar[])"


def bumped_here(session: AsyncSession) -> bool:
    """Whether the session's current transaction has bumped counters. A summary built in it
    may show its uncommitted writes under the new counters: it must not be cached (were the
    transaction rolled back, another's later commit would reach the same counters)."""
    tx = session.sync_session.get_transaction()
    return tx is not None and session.info.get(_BUMPED) is tx
