"""What the browser screens show, read from the domains' own services.

A *screen* is one call as the handler's page draws it: the call, the caller/household context
and alerts the history lookup stored, the THRIVE+ state, the handler's own assessment draft
and the latest assessment. The page
fetches one when it starts and after a `resync`; the WebSocket keeps it current in between.
The board is the supervisor's list of calls not ended, and each handler's status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth import policy
from app.auth.models import Role, Staff
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls import service as calls
from app.calls.models import Call
from app.calls.snapshot import snapshot_of
from app.db import utcnow
from app.errors import Forbidden
from app.history import alerts as history_alerts
from app.history.consultation import log_calls_shown, log_consultation
from app.history.models import Alert
from app.history.stored_context import stored_context
from app.realtime.publish import AT_DESK, call_view
from app.resources import Resources
from app.thrive import drafts
from app.thrive import service as thrive
from app.thrive.assessment import AssessmentNotFound, get_assessment
from app.thrive.models import Assessment, AssessmentDraft, CallThrive

# The board lists at most this many calls not ended (newest first): a contact centre's floor.
BOARD_LIMIT = 500
# A call that ended at a handler's desk stays on their screen ("wrap-up: assessment due")
# until its assessment is submitted or deferred: for a shift at most, and so many calls.
WRAP_UP_WINDOW = timedelta(hours=12)
WRAP_UP_LIMIT = 50


class NotYourCall(Forbidden):
    status, code = 403, "not_your_call"


async def call_for_viewer(session: AsyncSession, call_id: int, principal: Principal) -> Call:
    """The call if `principal` may open its page (404 unknown, 403 someone else's)."""
    call = await calls.get_call(session, call_id)
    if not policy.allows_on(principal, Capability.open_call_screen, call):
        raise NotYourCall("this call is not yours to open")
    return call


def view_of(call: Call) -> dict[str, object]:
    view = call_view(snapshot_of(call))
    view["flagged"] = bool(call.flagged)
    view["end_cause"] = call.end_cause
    return view


async def screen(
    session: AsyncSession, resources: Resources, call: Call, principal: Principal
) -> dict[str, object]:
    """One call as the handler's page draws it (the consultation is audit-logged)."""
    stored = await stored_context(session, call.id)
    context, alerts = stored if stored is not None else (None, [])
    if context is not None:
        # The screen shows a person's and household's records: who looked, when, which.
        log_consultation(session, context, actor=principal.actor, call_id=call.id)
    thrive_state = await thrive.current(session, resources, call.id, principal)
    try:
        assessment = await get_assessment(session, call.id, principal)
        latest: dict[str, object] | None = assessment.model_dump(mode="json", exclude={"history"})
    except AssessmentNotFound:
        latest = None
    # The narrative typed so far: a reloaded page must show it, or the next keystroke would
    # replace the stored text with a fragment (posts send the whole text).
    kept = await session.get(CallThrive, call.id)
    return {
        "call": view_of(call),
        "context": context,
        "alerts": alerts,
        "thrive": thrive_state.model_dump(mode="json"),
        "assessment": latest,
        "narrative": kept.narrative if kept is not None else None,
        # The viewer's own form as they last saved it: a reload or a return to the call
        # restores it (a handler's only; a supervisor's screen is call_detail).
        "draft": (
            await drafts.for_screen(session, call.id, principal)
            if policy.allows(principal, Capability.desk)
            else None
        ),
    }


async def handler_calls(
    session: AsyncSession, resources: Resources, principal: Principal
) -> list[dict[str, object]]:
    """The calls at this handler's desk now (ringing, answered, transferred to them), then
    those answered and ended with them in the last WRAP_UP_WINDOW whose assessment is due
    (neither submitted nor deferred)."""
    rows = (
        await session.scalars(
            select(Call)
            .where(Call.handler_id == principal.id, Call.state.in_(AT_DESK))
            .order_by(Call.id)
        )
    ).all()
    submitted = exists().where(Assessment.call_id == Call.id)
    deferred = exists().where(
        AssessmentDraft.call_id == Call.id,
        AssessmentDraft.staff_id == principal.id,
        AssessmentDraft.deferred.is_(True),
    )
    wrap_up = (
        await session.scalars(
            select(Call)
            .where(
                Call.handler_id == principal.id,
                Call.state == "ended",
                Call.answered_at.is_not(None),  # a call never answered has nothing to assess
                Call.ended_at >= utcnow() - WRAP_UP_WINDOW,
                ~submitted,
                ~deferred,
            )
            .order_by(Call.id.desc())
            .limit(WRAP_UP_LIMIT)
        )
    ).all()
    return [await screen(session, resources, row, principal) for row in [*rows, *reversed(wrap_up)]]


async def call_detail(session: AsyncSession, call: Call, principal: Principal) -> dict[str, object]:
    """A call for the supervisor's detail view: the call and its alerts with their
    acknowledgements (not the caller's history: that is the handler's screen)."""
    # The call record shows a caller's number: who looked, when, is recorded.
    audit.consulted_call(session, actor=principal.actor, call_id=call.id)
    alerts = await history_alerts.for_call(session, call.id)
    return {"call": view_of(call), "alerts": [history_alerts.as_dict(a) for a in alerts]}


def _summary(alerts: Sequence[Alert]) -> dict[str, object]:
    return {
        "alerts": len(alerts),
        "unacknowledged": sum(1 for a in alerts if not a.acknowledged_at),
        "kinds": sorted({a.kind for a in alerts}),
        "top_severity": max(
            (a.severity for a in alerts),
            key=lambda s: history_alerts.SEVERITY_RANK.get(s, 0),
            default=None,
        ),
    }


async def board(session: AsyncSession, principal: Principal) -> dict[str, object]:
    """Every call not ended (with an alert summary) and every handler's current status; the
    people the calls identify are recorded as seen by `principal`."""
    rows = (
        await session.scalars(
            select(Call).where(Call.state != "ended").order_by(Call.id.desc()).limit(BOARD_LIMIT)
        )
    ).all()
    by_call: dict[int, list[Alert]] = {row.id: [] for row in rows}
    if by_call:
        for alert in await session.scalars(select(Alert).where(Alert.call_id.in_(by_call))):
            by_call[alert.call_id].append(alert)
    await log_calls_shown(session, list(by_call), actor=principal.actor, justification="board")
    items = [
        {
            **view_of(row),
            "alerts": [history_alerts.as_dict(a) for a in by_call[row.id]],
            "summary": _summary(by_call[row.id]),
        }
        for row in reversed(rows)
    ]
    handlers = (
        await session.scalars(
            select(Staff).where(Staff.role == Role.handler.value, Staff.active.is_(True))
        )
    ).all()
    return {
        "calls": items,
        "handlers": [{"id": s.id, "name": s.name} for s in sorted(handlers, key=lambda s: s.id)],
    }
