"""Periodic clean-up of stores that only exist to make retries safe, and of ended browser
sessions (issue 16: kept SESSION_RETENTION_DAYS to say when and why they ended, then deleted)
and of outbox messages sent more than OUTBOX_RETENTION_SECONDS ago (issue 18).

`idempotent_request` keeps the answer of every keyed write, and those answers are personal
data (cue matches, assessment text): they are kept only as long as a client could still be
retrying (the handler's page retries for minutes, survives a reload in the same tab, and is
given a generous margin on top), then deleted. Every worker runs the loop; the delete is
idempotent, so several workers doing it at once is harmless.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import sessions as staff_sessions
from app.config import Settings
from app.db import utcnow
from app.idempotency import service as idempotency
from app.periodic import Periodic
from app.realtime import outbox

log = logging.getLogger(__name__)


class Housekeeping(Periodic):
    name = "housekeeping"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        super().__init__(settings.host_period(settings.housekeeping_seconds))
        self.sessions = sessions
        self.retention = timedelta(seconds=settings.idempotency_retention_seconds)
        self.session_retention = timedelta(days=settings.session_retention_days)
        self.outbox_retention = settings.outbox_retention_seconds

    async def run_once(self) -> int:
        """Delete what is past its retention; the number of rows deleted."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            pruned = await idempotency.prune(session, now - self.retention)
            # Ended first (expired ones are marked by the credential watch, too), then gone.
            await staff_sessions.end_expired(session)
            ended = await staff_sessions.purge_ended(session, now - self.session_retention)
            # Outbox rows are only needed until sent; kept a while to say what went out when.
            sent = await outbox.purge_sent(session, self.outbox_retention)
            return pruned + ended + sent

    async def tick(self) -> None:
        deleted = await self.run_once()
        if deleted:
            log.info("housekeeping pruned rows", extra={"rows": deleted})
