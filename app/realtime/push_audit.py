"""Who saw what a socket delivered: each frame carrying a caller's context (or alerts) is
recorded in the audit log against the staff member whose socket received it, not the call
that caused it.

The rows are written off the send path: a socket's delivery queues them and one task per
process appends them in batches (what GATHER_SECONDS of deliveries queued), one transaction
each, so a slow store never slows delivery.
Rows that cannot be written (the store down) are kept, up to a bound, and tried again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import json_codec
from app.audit import service as audit
from app.db import unit_of_work
from app.history.consultation import consultations, log_calls_shown
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

JUSTIFICATION = "pushed to their screen"
BATCH = 1000
# The rows of this many seconds' deliveries go in one transaction (five round trips to the
# store, whatever their number) instead of one each: short, as a row waiting here is lost
# if the process is killed.
GATHER_SECONDS = 0.1
# Beyond this many rows waiting for a store that does not answer, the oldest are dropped
# (and the count logged): memory must stay bounded whatever happens to the store.
MAX_PENDING = 200_000
RETRY_SECONDS = 1.0


class Shown:
    """What one delivery showed: caller contexts (audit rows ready to write) and calls whose
    alerts alone it carried (their people are read from the call's stored context when the
    rows are written)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.calls: list[tuple[str, int]] = []


def shown_by(actor: str, text: str) -> Shown:
    """What delivering this frame showed `actor`: a row per person and household of the
    context it carries (naming the contacts and markers shown), the calls whose alerts it
    carries; nothing for frames without either (a cheap test before parsing)."""
    shown = Shown()
    if '"context"' not in text and '"alerts"' not in text:
        return shown
    message = json_codec.loads(text)
    data = message.get("data") or {}
    if message.get("type") == "resync":
        items = [(item, (item.get("call") or {}).get("id")) for item in data.get("calls") or []]
    else:
        items = [(data, message.get("call_id"))]
    for item, call_id in items:
        if not isinstance(call_id, int):
            continue
        context = item.get("context")
        if context:
            shown.rows.extend(
                consultations(context, actor=actor, call_id=call_id, justification=JUSTIFICATION)
            )
        elif item.get("alerts"):
            shown.calls.append((actor, call_id))
    return shown


class PushAudit:
    """This process's queue of delivery audit rows and the task that writes them."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], gather_seconds: float = GATHER_SECONDS
    ) -> None:
        self.sessions = sessions
        self.gather_seconds = gather_seconds
        self.transactions = 0  # written so far (for tests)
        self.pending: list[dict[str, Any]] = []
        self.pending_calls: list[tuple[str, int]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def delivered(self, actor: str, text: str) -> None:
        """`text` reached `actor`'s socket: queue its audit rows."""
        shown = shown_by(actor, text)
        if not shown.rows and not shown.calls:
            return
        self.pending.extend(shown.rows)
        self.pending_calls.extend(shown.calls)
        for queue in (self.pending, self.pending_calls):
            if len(queue) > MAX_PENDING:
                dropped = len(queue) - MAX_PENDING
                del queue[:dropped]
                log.error("delivery audit dropped: store unavailable", extra={"rows": dropped})
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # Cleared before the window: what is queued during it goes in this transaction
            # (a later wake finds the queue empty and writes nothing).
            self._wake.clear()
            await asyncio.sleep(self.gather_seconds)
            if not await self.flush():
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()

    async def flush(self) -> bool:
        """Write what is queued; False (rows kept) when the store refused."""
        while self.pending or self.pending_calls:
            batch, calls = self.pending[:BATCH], self.pending_calls[:BATCH]
            by_actor: dict[str, list[int]] = {}
            for actor, call_id in calls:
                by_actor.setdefault(actor, []).append(call_id)
            try:
                async with unit_of_work(self.sessions) as session:
                    audit.add_rows(session, batch)
                    for actor, call_ids in by_actor.items():
                        await log_calls_shown(
                            session, call_ids, actor=actor, justification=JUSTIFICATION
                        )
            except Exception as exc:
                log.warning("delivery audit not written yet", extra={"error": type(exc).__name__})
                return False
            self.transactions += 1
            del self.pending[: len(batch)]
            del self.pending_calls[: len(calls)]
        return True

    async def close(self) -> None:
        """Stop the task and write what is left (the lifespan ends: the store is still up)."""
        await cancel_and_wait(self._task)
        await self.flush()
