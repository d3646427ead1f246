"""The context and alerts stored on a call, read back (realtime delivery, screens, the API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import db_direct as direct
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
    # One round trip for contexts and alerts (this runs on every ringing, on the ring ->
    # screen path, and once per batch).
    found: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
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
