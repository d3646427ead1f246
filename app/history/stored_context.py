"""The context and alerts stored on a call, read back (realtime delivery, screens, the API)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
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
    """The context and alerts read with this transaction's event of the call (see below),
    when that is the whole answer (`_whole`)."""
    sync = session.sync_session
    reads = {
        name: calls_repo.read_with_event_answer(sync, call_id, name) for name in (_CONTEXT, _ALERTS)
    }
    whole, stored = from_reads(reads)
    return stored if whole else None


def from_reads(
    reads: Mapping[str, object],
) -> tuple[bool, tuple[dict[str, Any], list[dict[str, Any]]] | None]:
    """`stored_context` from what was read with the event (here, or by the express path:
    app.calls.express): whether that is the whole answer, and the stored context and alerts
    (None when no context is stored). Not the whole answer when the alerts were not read,
    or someone acknowledged one (who did is read in full by `stored_contexts`)."""
    alerts = reads.get(_ALERTS)
    if not isinstance(alerts, list):
        return False, None
    found = [_alert_of(a) for a in alerts]
    if any(a["acknowledged_at"] is not None for a in found):
        return False, None
    context = reads.get(_CONTEXT)
    if context is None:
        return True, None
    return True, (dict(context), found)  # type: ignore[call-overload]


def _alert_of(read: dict[str, Any]) -> dict[str, Any]:
    """An alert read as JSON (`_ALERTS`), as `alert_store.as_dict` shows a row."""
    row = SimpleNamespace(**read)
    row.raised_at = _instant(read["raised_at"])
    row.acknowledged_at = _instant(read["acknowledged_at"])
    return alert_store.as_dict(row)  # type: ignore[arg-type]


def _instant(value: str | None) -> datetime | None:
    # JSON gives the session's time zone; rows are read as UTC (app.db.UTCDateTime).
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


# The statement that stores a ringing also reads the context its offered stored and the
# call's alerts: the ring -> screen path's own read of them is then not sent (issue 19).
# Only for the events whose steps read them (the history step on ringing and ended, the
# realtime step on transferred): an offered's call is new, an answered needs neither.
# The express path reads them for every event it takes.
_CONTEXT, _ALERTS = "stored_context", "alerts"
_READ_ON = ("ringing", "transferred", "ended")
_ALERT_FIELDS = (
    "id", "kind", "severity", "title", "reasons", "evidence", "rule", "tags", "suggested_grade",
    "category", "evidence_lines", "raised_at", "acknowledged_at", "acknowledged_by",
)  # fmt: skip
calls_repo.read_with_event(
    _CONTEXT,
    lambda call_id: (
        select(CallContext.context).where(CallContext.call_id == call_id).scalar_subquery()
    ),
    on=_READ_ON,
)
calls_repo.read_with_event(
    _ALERTS,
    lambda call_id: (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_object(
                            *(
                                x
                                for name in _ALERT_FIELDS
                                for x in (literal_column(f"'{name}'"), Alert.__table__.c[name])
                            )
                        ),
                        Alert.id,
                    )
                ),
                literal_column("'[]'::json"),
            )
        )
        .where(Alert.call_id == call_id)
        .scalar_subquery()
    ),
    on=_READ_ON,
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
