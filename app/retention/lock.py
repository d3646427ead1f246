"""One purge at a time across every worker and host.

On PostgreSQL a transaction-scoped advisory lock: the worker that takes it purges, the others
skip this round, and the lock goes with the transaction (a crashed worker cannot hold it). An
embedded SQLite database has one process by construction, so there is nothing to take.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import is_postgres

# A fixed 64-bit key naming the purge among the advisory locks of this database ("fc-ret").
PURGE_LOCK_KEY = 0x66632D726574


async def try_purge_lock(session: AsyncSession) -> bool:
    """Take the purge lock in the session's transaction; False when another worker has it."""
    if not is_postgres(session):
        return True
    taken = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PURGE_LOCK_KEY}
    )
    return bool(taken)
