"""Acknowledging an alert: the handler's repeat-victim check, recorded with who and when in the
history domain's `alert` row, then announced as `alert.acknowledged` to the call's handler and
to supervisors (after the commit)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls.models import Call
from app.db import after_commit, utcnow
from app.errors import AppError, Forbidden
from app.history.models import Alert
from app.realtime.envelope import SUPERVISORS, handler_channel
from app.realtime.publish import publish_to
from app.resources import Resources


class AlertNotFound(AppError):
    status, code = 404, "alert_not_found"


def ack_view(alert: Alert) -> dict[str, object]:
    acknowledged_at: datetime | None = alert.acknowledged_at
    return {
        "alert_id": alert.id,
        "call_id": alert.call_id,
        "kind": alert.kind,
        "acknowledged_at": acknowledged_at,
        "acknowledged_by": alert.acknowledged_by,
    }


async def acknowledge(
    session: AsyncSession, resources: Resources, alert_id: int, principal: Principal
) -> Alert:
    """Record that `principal` acknowledged the alert (the handler the call is with, or a
    supervisor). A second acknowledgement keeps the first one's who and when."""
    alert = await session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise AlertNotFound("no such alert", details={"alert_id": alert_id})
    call = await session.get(Call, alert.call_id)
    handler = call.handler_id if call is not None else None
    allowed = policy.sees_every_call(principal, Capability.acknowledge_alert) or (
        call is not None and policy.allows_on(principal, Capability.acknowledge_alert, call)
    )
    if not allowed:
        raise Forbidden("only the call's handler or a supervisor can acknowledge its alerts")
    if alert.acknowledged_at is not None:
        return alert
    alert.acknowledged_at = utcnow()
    alert.acknowledged_by = principal.id
    await session.flush()

    channels = [SUPERVISORS] + ([handler_channel(handler)] if handler else [])
    data = ack_view(alert)
    call_id = alert.call_id

    async def announce() -> None:
        await publish_to(resources, channels, "alert.acknowledged", call_id, data)

    after_commit(session, announce)
    return alert
