"""The context and alerts stored on a call, read back (realtime delivery, screens, the API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import db_direct as direct
from app.calls import repository as calls_repo
from app.history import alerts as alert_store
from app.history.models import Alert, CallContext


async def stored_context(
    session: AsyncSession, call_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The context and alerts stored for a call, or None before its lookup ran. The realtime
    domain delivers them when the call rings at a desk."""
    return (await stored_contexts(session, [call_id])).get(call_id)


async def stored_contexts(
    session: AsyncSession, call_ids: list[int]
) -> dict[int, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """`stored_context` of many calls, by call id (calls without one are absent)."""
    if not call_ids:
        return {}
    found: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for call_id in call_ids:
        read = _read_with_event(session, call_id)
        if read is not None:
            found[call_id] = read
    call_ids = [i for i in call_ids if i not in found]
    if not call_ids:
        return found
    # One round trip for contexts and alerts (this runs on every ringing, on the ring ->
    # screen path, and once per batch).
    acked: list[dict[str, Any]] = []
    for row in await direct.rows(session, _STORED_CONTEXT, {"call_ids": call_ids}):
        held = found.get(row.call_id)
        if held is None:
            held = found[row.call_id] = (dict(row.stored_context), [])
        if row.id is not None:
            alert = alert_store.as_dict(row)
            held[1].append(alert)
            if row.acknowledged_at is not None:
                acked.append(alert)
    # Per-person acknowledgements only where someone acknowledged: at ringing there are
    # usually none, and the ring -> screen path keeps its single round trip.
    if acked:
        by_alert = await alert_store.acknowledgements_of(session, (a["alert_id"] for a in acked))
        for alert in acked:
            alert["acknowledgements"] = by_alert[alert["alert_id"]]
    return found


def _read_with_event(
    session: AsyncSession, call_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The context read with this transaction's event of the call (see below), when it is
    the whole answer: a context with no alerts (alerts, and who acknowledged them, are read
    in full by `_STORED_CONTEXT`)."""
    sync = session.sync_session
    context = calls_repo.read_with_event_answer(sync, call_id, _CONTEXT)
    has_alerts = calls_repo.read_with_event_answer(sync, call_id, _HAS_ALERTS)
    if context is None or has_alerts is not False:
        return None
    return dict(context), []  # type: ignore[call-overload]


# A ringing's statement that stores it also reads the context its offered stored, and whether
# the call has alerts: the ring -> screen path's own read of them is then not sent (issue 19).
# Only for the events whose steps read it (the history step on ringing and ended, the
# realtime step on transferred): an offered's call is new, an answered needs neither.
_CONTEXT, _HAS_ALERTS = "stored_context", "has_alerts"
_READ_ON = ("ringing", "transferred", "ended")
calls_repo.read_with_event(
    _CONTEXT,
    lambda call_id: (
        select(CallContext.context).where(CallContext.call_id == call_id).scalar_subquery()
    ),
    on=_READ_ON,
)
calls_repo.read_with_event(
    _HAS_ALERTS, lambda call_id: exists().where(Alert.call_id == call_id), on=_READ_ON
)


_STORED_CONTEXT = (
    select(
        CallContext.call_id,
        CallContext.context.label("stored_context"),
        Alert.id,
        Alert.kind,
        Alert.severity,
        Alert.title,
        Alert.reasons,
        Alert.evidence,
        Alert.rule,
        Alert.tags,
        Alert.suggested_grade,
        Alert.category,
        Alert.evidence_lines,
        Alert.raised_at,
        Alert.acknowledged_at,
        Alert.acknowledged_by,
    )
    .select_from(CallContext)
    .outerjoin(Alert, Alert.call_id == CallContext.call_id)
    .where(CallContext.call_id.in_(bindparam("call_ids", expanding=True)))
    .order_by(CallContext.call_id, Alert.id)
)
