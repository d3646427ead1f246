"""Who saw what a socket delivered: each frame carrying a caller's context (or alerts) is
recorded in the audit log against the staff member whose socket received it, not the call
that caused it.

The rows are written off the send path: a socket's delivery queues them and one task per
process appends them in batches, one transaction each, so a slow store never slows delivery.
Rows that cannot be written (the store down) are kept, up to a bound, and tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import service as audit
from app.db import unit_of_work
from app.history.consultation import consultations, subjects_shown

log = logging.getLogger(__name__)

JUSTIFICATION = "pushed to their screen"
BATCH = 1000
# Beyond this many rows waiting for a store that does not answer, the oldest are dropped
# (and the count logged): memory must stay bounded whatever happens to the store.
MAX_PENDING = 200_000
RETRY_SECONDS = 1.0


def rows_for(actor: str, text: str) -> list[dict[str, Any]]:
    """The audit rows of delivering this frame to `actor`: a row per person and household of
    the context it carries (naming the contacts and markers shown), a row for a call whose
    alerts it carries; none for frames without either (a cheap test before parsing)."""
    if '"context"' not in text and '"alerts"' not in text:
        return []
    message = json.loads(text)
    data = message.get("data") or {}
    if message.get("type") == "resync":
        items = [(item, (item.get("call") or {}).get("id")) for item in data.get("calls") or []]
    else:
        items = [(data, message.get("call_id"))]
    rows: list[dict[str, Any]] = []
    for item, call_id in items:
        if not isinstance(call_id, int):
            continue
        context = item.get("context")
        if context:
            rows.extend(
                consultations(context, actor=actor, call_id=call_id, justification=JUSTIFICATION)
            )
        elif item.get("alerts"):
            rows.extend(subjects_shown(None, actor, call_id, JUSTIFICATION))
    return rows


class PushAudit:
    """This process's queue of delivery audit rows and the task that writes them."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def delivered(self, actor: str, text: str) -> None:
        """`text` reached `actor`'s socket: queue its audit rows."""
        rows = rows_for(actor, text)
        if not rows:
            return
        self.pending.extend(rows)
        if len(self.pending) > MAX_PENDING:
            dropped = len(self.pending) - MAX_PENDING
            del self.pending[:dropped]
            log.error("delivery audit rows dropped: store unavailable", extra={"rows": dropped})
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not await self.flush():
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()

    async def flush(self) -> bool:
        """Write what is queued; False (rows kept) when the store refused."""
        while self.pending:
            batch = self.pending[:BATCH]
            try:
                async with unit_of_work(self.sessions) as session:
                    audit.add_rows(session, batch)
            except Exception as exc:
                log.warning("delivery audit not written yet", extra={"error": type(exc).__name__})
                return False
            del self.pending[: len(batch)]
        return True

    async def close(self) -> None:
        """Stop the task and write what is left (the lifespan ends: the store is still up)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
