"""Acknowledging an alert, per person (issue 15): the handler's acknowledgement is their
repeat-victim check, a supervisor's says they have seen it; each is its own row
(`alert_acknowledgement`), so a supervisor acknowledging never hides the handler's button nor
stands in for the handler's check. The alert row keeps the first acknowledgement's who and
when. Announced as `alert.acknowledged` to the call's handler and to supervisors (after the
commit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls.models import Call
from app.db import utcnow
from app.errors import AppError, Forbidden
from app.history import alerts as history_alerts
from app.history.models import Alert, AlertAcknowledgement
from app.realtime.envelope import SUPERVISORS, handler_channel
from app.realtime.publish import stage_to
from app.resources import Resources


class AlertNotFound(AppError):
    status, code = 404, "alert_not_found"


def ack_view(alert: Alert, acknowledgements: list[dict[str, Any]]) -> dict[str, object]:
    acknowledged_at: datetime | None = alert.acknowledged_at
    return {
        "alert_id": alert.id,
        "call_id": alert.call_id,
        "kind": alert.kind,
        "acknowledged_at": acknowledged_at,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledgements": acknowledgements,
    }


async def acknowledge(
    session: AsyncSession, resources: Resources, alert_id: int, principal: Principal
) -> dict[str, object]:
    """Record that `principal` acknowledged the alert (the handler the call is with, or a
    supervisor or admin), once per person: acknowledging again changes nothing. Returns the
    alert's acknowledgements (`ack_view`)."""
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
    mine = await session.scalar(
        select(AlertAcknowledgement.id).where(
            AlertAcknowledgement.alert_id == alert.id,
            AlertAcknowledgement.staff_id == principal.id,
        )
    )
    if mine is None:
        now = utcnow()
        session.add(
            AlertAcknowledgement(
                alert_id=alert.id,
                staff_id=principal.id,
                role=principal.role.value,
                acknowledged_at=now,
            )
        )
        if alert.acknowledged_at is None:
            alert.acknowledged_at = now
            alert.acknowledged_by = principal.id
        await session.flush()
    acks = (await history_alerts.acknowledgements_of(session, [alert.id]))[alert.id]
    data = ack_view(alert, acks)
    if mine is not None:
        return data

    channels = [SUPERVISORS] + ([handler_channel(handler)] if handler else [])
    stage_to(session, resources, channels, "alert.acknowledged", alert.call_id, data)
    return data
