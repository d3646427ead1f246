"""Periodic clean-up of stores that only exist to make retries safe.

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

from app.config import Settings
from app.db import utcnow
from app.idempotency import service as idempotency
from app.periodic import Periodic

log = logging.getLogger(__name__)


class Housekeeping(Periodic):
    name = "housekeeping"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        super().__init__(settings.housekeeping_seconds)
        self.sessions = sessions
        self.retention = timedelta(seconds=settings.idempotency_retention_seconds)

    async def run_once(self) -> int:
        """Delete what is past its retention; the number of rows deleted."""
        async with self.sessions() as session, session.begin():
            return await idempotency.prune(session, utcnow() - self.retention)

    async def tick(self) -> None:
        deleted = await self.run_once()
        if deleted:
            log.info("idempotency answers pruned", extra={"rows": deleted})
