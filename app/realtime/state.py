"""The current state of a client's open calls, read from the store: what a `resync` carries
when a cursor can no longer be resumed (too old, unknown, or the broker lost it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls.models import Call
from app.calls.snapshot import snapshot_of
from app.history.stored_context import stored_context
from app.realtime.publish import AT_DESK, call_view

# A supervisor's resync lists at most this many open calls, newest first.
SUPERVISOR_LIMIT = 500


async def open_calls(session: AsyncSession, principal: Principal) -> list[dict[str, object]]:
    """A handler's calls at their desk (with context and alerts); for supervisors every call
    not ended (with its alerts)."""
    query = select(Call).where(Call.state != "ended")
    every_call = policy.allows(principal, Capability.watch_board)
    if not every_call:
        query = query.where(Call.handler_id == principal.id, Call.state.in_(AT_DESK))
    else:
        query = query.limit(SUPERVISOR_LIMIT)
    rows = (await session.scalars(query.order_by(Call.id.desc()))).all()
    out: list[dict[str, object]] = []
    for row in reversed(rows):
        stored = await stored_context(session, row.id)
        context, alerts = stored if stored is not None else (None, [])
        item: dict[str, object] = {"call": call_view(snapshot_of(row)), "alerts": alerts}
        if not every_call:
            item["context"] = context
        out.append(item)
    return out
