"""Alert acknowledgement over REST (the same as `{"type": "ack"}` on the socket)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from app.api.deps import CurrentStaff, ResourcesDep, SessionDep
from app.realtime import acks

router = APIRouter(prefix="/alerts", tags=["alerts"])


class AckRead(BaseModel):
    alert_id: int
    call_id: int
    kind: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None


@router.post("/{alert_id}/ack", response_model=AckRead)
async def acknowledge(
    alert_id: int, staff: CurrentStaff, session: SessionDep, resources: ResourcesDep
) -> AckRead:
    """Record the acknowledgement (the call's handler or a supervisor) and broadcast
    `alert.acknowledged`; acknowledging again returns the first acknowledgement."""
    alert = await acks.acknowledge(session, resources, alert_id, staff)
    return AckRead.model_validate(acks.ack_view(alert))
