"""Running the purge: by hand (`firstcontact retention run`) or on the schedule."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.config import Settings
from app.db import utcnow
from app.retention.lock import try_purge_lock
from app.retention.purge import Cutoffs, purge


async def run(
    session: AsyncSession,
    settings: Settings,
    *,
    actor: str,
    dry_run: bool = False,
    now: datetime | None = None,
) -> dict[str, int] | None:
    """Purge what is past retention in the session's transaction: rows per class (what would
    go, on a dry run), or None when another worker holds the purge lock."""
    if not await try_purge_lock(session):
        return None
    counts = await purge(session, Cutoffs.from_settings(settings, now or utcnow()), dry_run=dry_run)
    if not dry_run and any(counts.values()):
        # Erasure is one of the operations s.62 requires to be logged: how much, never what.
        audit.record(
            session,
            actor=actor,
            action="erasure",
            subject_type="retention",
            justification="retention period ended",
            records={"rows": counts},
        )
    return counts
