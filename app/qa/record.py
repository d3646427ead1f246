"""The call's record as a QA reviewer reads it beside the form: the call and its events,
alerts, THRIVE+ state, the latest assessment and the reviews so far. Audited as a consultation."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.service import Principal
from app.calls import service as calls
from app.calls.models import CallEventRow
from app.history import alerts as history_alerts
from app.qa import months
from app.qa.forms import QaForm
from app.qa.models import QaAnswer, QaReview
from app.qa.reviews import in_form_order, review_read
from app.thrive.models import Assessment, CallThrive


async def call_record(
    session: AsyncSession, form: QaForm, call_id: int, principal: Principal
) -> dict[str, object]:
    """Everything a reviewer reads beside the form: the call and its events, alerts (with
    acknowledgements), what was answered and given, the narrative, the latest THRIVE+
    assessment and the reviews so far. Audited as a consultation of the call's record."""
    call = await calls.get_call(session, call_id)
    events = (
        await session.scalars(
            select(CallEventRow)
            .where(CallEventRow.call_id == call.id)
            .order_by(CallEventRow.occurred_at, CallEventRow.id)
        )
    ).all()
    alerts = await history_alerts.for_call(session, call.id)
    acks = await history_alerts.acknowledgements_of(session, (a.id for a in alerts))
    state = await session.get(CallThrive, call.id)
    assessment = await session.scalar(
        select(Assessment)
        .where(Assessment.call_id == call.id)
        .order_by(Assessment.version.desc())
        .limit(1)
    )
    reviews = (
        await session.scalars(
            select(QaReview).where(QaReview.call_id == call.id).order_by(QaReview.ordinal)
        )
    ).all()
    answers: dict[int, list[QaAnswer]] = defaultdict(list)
    if reviews:
        for answer in await session.scalars(
            select(QaAnswer).where(QaAnswer.review_id.in_([r.id for r in reviews]))
        ):
            answers[answer.review_id].append(answer)
    audit.consulted_call(
        session,
        actor=principal.actor,
        call_id=call.id,
        justification="QA review",
        records={
            "events": [e.id for e in events],
            "alerts": [a.id for a in alerts],
            "assessment": assessment.id if assessment is not None else None,
            "narrative": bool(state is not None and state.narrative),
            "reviews": [r.id for r in reviews],
        },
    )
    offered_at = call.offered_at or call.created_at
    return {
        "form": form.ref,
        "call": {
            "id": call.id,
            "state": call.state,
            "caller_e164": call.caller_e164,
            "presentation": call.presentation,
            "called": call.called,
            "queue": call.queue,
            "handler_id": call.handler_id,
            "handlers": list(call.handlers or []),
            "offered_at": call.offered_at,
            "answered_at": call.answered_at,
            "ended_at": call.ended_at,
            "end_cause": call.end_cause,
            "flagged": call.flagged,
            "month": months.of(offered_at),
        },
        "events": [
            {
                "type": e.type,
                "occurred_at": e.occurred_at,
                "handler_id": (e.canonical or {}).get("handler_id"),
            }
            for e in events
        ],
        "alerts": [
            {
                "id": a.id,
                "kind": a.kind,
                "severity": a.severity,
                "title": a.title,
                "reasons": list(a.reasons or []),
                "raised_at": a.raised_at,
                "acknowledged_at": a.acknowledged_at,
                "acknowledged_by": a.acknowledged_by,
                # Each person's, the handler's and supervisors' apart (issue 15).
                "acknowledgements": acks[a.id],
            }
            for a in alerts
        ],
        "thrive": None
        if state is None
        else {
            "incident_type": state.incident_type,
            "narrative": state.narrative,
            "prompts_answered": list(state.prompts_answered or []),
            "advice_given": list(state.advice_given or []),
        },
        "assessment": None
        if assessment is None
        else {
            "version": assessment.version,
            "submitted_by": assessment.submitted_by,
            "submitted_at": assessment.submitted_at,
            "incident_type": assessment.incident_type,
            "grade": assessment.grade,
            "suggested_grade": assessment.suggested_grade,
            "grade_reason": assessment.grade_reason,
            "elements": assessment.elements,
            "advice_given": assessment.advice_given,
            "prompts_answered": list(assessment.prompts_answered or []),
            "repeat_victim_check": assessment.repeat_victim_check,
            "victim": assessment.victim,
            "domestic_abuse": assessment.domestic_abuse,
            "alert_kinds": list(assessment.alert_kinds or []),
        },
        "reviews": [
            review_read(r, in_form_order(form, answers[r.id])).model_dump(mode="json")
            for r in reviews
        ],
    }
