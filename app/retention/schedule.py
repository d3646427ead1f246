"""The purge on a schedule: every worker wakes each RETENTION_SECONDS and tries; the advisory
lock lets exactly one of them (across hosts) purge, the others skip that round."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import without_statement_timeout
from app.periodic import Periodic
from app.retention import service

log = logging.getLogger(__name__)

SCHEDULE_ACTOR = "retention"


class RetentionSchedule(Periodic):
    name = "retention"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        super().__init__(settings.retention_seconds)
        self.sessions = sessions
        self.settings = settings

    async def run_once(self) -> dict[str, int] | None:
        async with self.sessions() as session, session.begin():
            await without_statement_timeout(session)  # batched deletes may take a while
            return await service.run(session, self.settings, actor=SCHEDULE_ACTOR)

    async def tick(self) -> None:
        counts = await self.run_once()
        if counts is None:
            log.debug("retention purge skipped: another worker holds the lock")
        elif any(counts.values()):
            log.info("retention purge", extra={"rows": counts})
