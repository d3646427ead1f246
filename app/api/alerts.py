"""Alerts over REST: acknowledgement (the same as `{"type": "ack"}` on the socket), a
handler's feedback on an alert, and per-rule precision from that feedback (issue 15)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CurrentStaff, ResourcesDep, SessionDep, holding
from app.auth.policy import Capability
from app.auth.service import Principal
from app.history import feedback
from app.history.models import Alert
from app.realtime import acks

router = APIRouter(prefix="/alerts", tags=["alerts"])

PrecisionReader = Annotated[Principal, holding(Capability.read_alert_precision)]
FeedbackGiver = Annotated[Principal, holding(Capability.give_alert_feedback)]
Days = Annotated[
    int, Query(ge=1, le=366, description="the window: alerts raised in the last N days")
]


class AckOne(BaseModel):
    staff_id: str
    role: str  # handler, supervisor or admin: the role they acknowledged in
    acknowledged_at: datetime


class AckRead(BaseModel):
    alert_id: int
    call_id: int
    kind: str
    # The first acknowledgement, whoever made it (kept as it was before issue 15).
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    # Everyone's, one per person, oldest first: the handler's and supervisors' apart.
    acknowledgements: list[AckOne]


@router.post("/{alert_id}/ack", response_model=AckRead)
async def acknowledge(
    alert_id: int, staff: CurrentStaff, session: SessionDep, resources: ResourcesDep
) -> AckRead:
    """Record this person's acknowledgement (the call's handler, a supervisor or an admin),
    once per person, and broadcast `alert.acknowledged`; acknowledging again changes nothing."""
    return AckRead.model_validate(await acks.acknowledge(session, resources, alert_id, staff))


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Literal["helpful", "not_relevant", "wrong_person"]
    reason: str | None = Field(default=None, max_length=500)


class FeedbackRead(BaseModel):
    alert_id: int
    staff_id: str
    verdict: str
    reason: str | None
    given_at: datetime


@router.post("/{alert_id}/feedback", response_model=FeedbackRead)
async def give_feedback(
    alert_id: int, body: FeedbackIn, staff: FeedbackGiver, session: SessionDep
) -> FeedbackRead:
    """A handler of the alert's call says whether it helped; again replaces their verdict."""
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise acks.AlertNotFound("no such alert", details={"alert_id": alert_id})
    reason = body.reason.strip() if body.reason else None
    row = await feedback.give(session, alert, staff, body.verdict, reason)
    return FeedbackRead.model_validate(feedback.feedback_view(row))


class RulePrecisionRead(BaseModel):
    rule: str
    versions: list[str]
    raised: int
    rated: int
    helpful: int
    not_relevant: int
    wrong_person: int
    precision: float | None  # helpful / rated; null until an alert of the rule is rated


class PrecisionRead(BaseModel):
    days: int
    since: datetime
    until: datetime
    rules: list[RulePrecisionRead]


@router.get("/precision", response_model=PrecisionRead)
async def rule_precision(
    staff: PrecisionReader, session: SessionDep, days: Days = 30
) -> PrecisionRead:
    """Each rule's alerts raised in the last `days` and what handlers said of them."""
    since, until, rules = await feedback.precision(session, days)
    return PrecisionRead(
        days=days,
        since=since,
        until=until,
        rules=[RulePrecisionRead.model_validate(r, from_attributes=True) for r in rules],
    )


@router.get("/precision.csv", response_class=Response)
async def rule_precision_csv(
    staff: PrecisionReader, session: SessionDep, days: Days = 30
) -> Response:
    """The same as CSV (columns: rule, versions, raised, rated, helpful, not_relevant,
    wrong_person, precision); a cell that starts like a formula is made text."""
    _since, _until, rules = await feedback.precision(session, days)
    return Response(
        feedback.to_csv(rules),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="alert-precision-{days}d.csv"'},
    )
