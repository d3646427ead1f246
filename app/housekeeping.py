"""Periodic clean-up of stores that only exist to make retries safe.

`idempotent_request` keeps the answer of every keyed write, and those answers are personal
data (cue matches, assessment text): they are kept only as long as a client could still be
retrying (the handler's page retries for minutes, survives a reload in the same tab, and is
given a generous margin on top), then deleted. Every worker runs the loop; the delete is
idempotent, so several workers doing it at once is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.idempotency import service as idempotency

log = logging.getLogger(__name__)


class Housekeeping:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.retention = timedelta(seconds=settings.idempotency_retention_seconds)
        self.period = settings.housekeeping_seconds
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Delete what is past its retention; the number of rows deleted."""
        async with self.sessions() as session, session.begin():
            return await idempotency.prune(session, utcnow() - self.retention)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="housekeeping")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                deleted = await self.run_once()
            except Exception as exc:  # the database away: the next round tries again
                log.warning("housekeeping failed", extra={"error": type(exc).__name__})
                continue
            if deleted:
                log.info("idempotency answers pruned", extra={"rows": deleted})
