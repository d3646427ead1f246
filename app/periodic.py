"""A task each worker runs every so often, for the life of the process (started and stopped
by the lifespan). A failed round is logged by its type and the next round tries again."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Periodic(ABC):
    """Subclasses set `name` and implement `tick` (one round)."""

    name = "periodic"

    def __init__(self, period: float) -> None:
        self.period = period
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def tick(self) -> None:
        """One round of the task."""

    async def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name=self.name)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.tick()
            except Exception as exc:  # the database away: the next round tries again
                log.warning(f"{self.name} failed", extra={"error": type(exc).__name__})
