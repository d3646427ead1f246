"""The purge on a schedule: every worker wakes each RETENTION_SECONDS and tries; the advisory
lock lets exactly one of them (across hosts) purge, the others skip that round."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.retention import service

log = logging.getLogger(__name__)

SCHEDULE_ACTOR = "retention"


class RetentionSchedule:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> dict[str, int] | None:
        async with self.sessions() as session, session.begin():
            return await service.run(session, self.settings, actor=SCHEDULE_ACTOR)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.retention_seconds)
            try:
                counts = await self.run_once()
            except Exception as exc:  # the database away: the next round tries again
                log.warning("retention purge failed", extra={"error": type(exc).__name__})
                continue
            if counts is None:
                log.debug("retention purge skipped: another worker holds the lock")
            elif any(counts.values()):
                log.info("retention purge", extra={"rows": counts})
