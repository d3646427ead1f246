"""The supervisor's board (issue 15): every call not ended with what a supervisor needs at a
glance (caller, top alert, incident type, qualifiers, grade, cues, acknowledgements), the
calls that ended in the last hour and still need a look (an alert nobody acknowledged, or
answered with no assessment), the queue's counters (waiting, longest wait, abandoned in the
last hour) and each handler's answered calls (more than one is warned about)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import Role, Staff
from app.calls import qualifiers
from app.calls.models import Call
from app.db import utcnow
from app.history import alerts as history_alerts
from app.history.consultation import log_calls_shown
from app.history.models import Alert
from app.thrive.models import Assessment, CallCue, CallThrive
from app.thrive.validation import Alert as GradedAlert
from app.thrive.validation import suggested_grade
from app.web.screens import view_of

# The board lists at most this many calls not ended (newest first): a contact centre's floor.
BOARD_LIMIT = 500
# Ended calls stay on the board this long when they still need a look.
RECENT_WINDOW = timedelta(minutes=60)
RECENT_LIMIT = 200
ABANDONED_LIMIT = 2000
ON_A_CALL = ("answered", "transferred")


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


async def _pairs(session: AsyncSession, query: Select[int, Any]) -> dict[int, Any]:
    """A two-column query as call id -> value."""
    return {row[0]: row[1] for row in await session.execute(query)}


async def _rows(session: AsyncSession, calls: Sequence[Call]) -> list[dict[str, Any]]:
    """The calls as board rows, with their alerts, THRIVE+ state, cue counts and grade."""
    ids = [c.id for c in calls]
    if not ids:
        return []
    alerts: dict[int, list[Alert]] = {i: [] for i in ids}
    for alert in await session.scalars(
        select(Alert).where(Alert.call_id.in_(ids)).order_by(Alert.id)
    ):
        alerts[alert.call_id].append(alert)
    every = [a for found in alerts.values() for a in found]
    acks = await history_alerts.acknowledgements_of(session, (a.id for a in every))
    types = await _pairs(
        session,
        select(CallThrive.call_id, CallThrive.incident_type).where(CallThrive.call_id.in_(ids)),
    )
    cues = await _pairs(
        session,
        select(CallCue.call_id, func.count())
        .where(CallCue.call_id.in_(ids))
        .group_by(CallCue.call_id),
    )
    latest = (
        select(Assessment.call_id, func.max(Assessment.version).label("version"))
        .where(Assessment.call_id.in_(ids))
        .group_by(Assessment.call_id)
        .subquery()
    )
    grades = await _pairs(
        session,
        select(Assessment.call_id, Assessment.grade).join(
            latest,
            (latest.c.call_id == Assessment.call_id) & (latest.c.version == Assessment.version),
        ),
    )
    out = []
    for call in calls:
        mine = alerts[call.id]
        suggestion = suggested_grade(
            GradedAlert(kind=a.kind, severity=a.severity, suggested_grade=a.suggested_grade)
            for a in mine
        )
        out.append(
            {
                **view_of(call),
                "alerts": [history_alerts.as_dict(a, acks[a.id]) for a in mine],
                "summary": _summary(mine),
                "incident_type": types.get(call.id),
                "qualifiers": qualifiers.ids_of(call.qualifiers),
                "cue_count": cues.get(call.id, 0),
                "grade": grades.get(call.id),
                "suggested_grade": suggestion.value if suggestion is not None else None,
                "assessed": call.id in grades,
            }
        )
    return out


async def _counters(session: AsyncSession, now: datetime) -> dict[str, object]:
    waiting = (
        await session.execute(
            select(func.count(), func.min(Call.offered_at)).where(Call.state == "offered")
        )
    ).one()
    # Each abandoned call of the last hour (not only a count): the page drops them from its
    # counter as they pass the hour, and adds those that end while it watches.
    abandoned = (
        await session.execute(
            select(Call.id, Call.ended_at)
            .where(
                Call.state == "ended",
                Call.answered_at.is_(None),
                Call.ended_at >= now - RECENT_WINDOW,
            )
            .order_by(Call.ended_at.desc())
            .limit(ABANDONED_LIMIT)
        )
    ).all()
    oldest: datetime | None = waiting[1]
    return {
        "waiting": int(waiting[0]),
        "longest_wait_seconds": (
            max(0, int((now - oldest).total_seconds())) if oldest is not None else 0
        ),
        "oldest_waiting_since": oldest,
        "abandoned_last_hour": len(abandoned),
        "abandoned": [{"id": row[0], "ended_at": row[1]} for row in abandoned],
    }


async def board(
    session: AsyncSession, escalate_after_seconds: float, actor: str
) -> dict[str, object]:
    """What the supervisor's board reads on start and after a `resync`; the people the calls
    identify are recorded as seen by `actor` (the board shows callers and alerts)."""
    now = utcnow()
    live = (
        await session.scalars(
            select(Call).where(Call.state != "ended").order_by(Call.id.desc()).limit(BOARD_LIMIT)
        )
    ).all()
    unacknowledged = (
        select(Alert.id).where(Alert.call_id == Call.id, Alert.acknowledged_at.is_(None)).exists()
    )
    assessed = select(Assessment.id).where(Assessment.call_id == Call.id).exists()
    ended = (
        await session.scalars(
            select(Call)
            .where(
                Call.state == "ended",
                Call.ended_at >= now - RECENT_WINDOW,
                or_(unacknowledged, Call.answered_at.is_not(None) & ~assessed),
            )
            .order_by(Call.ended_at.desc())
            .limit(RECENT_LIMIT)
        )
    ).all()
    rows = await _rows(session, [*reversed(live), *ended])
    await log_calls_shown(
        session, [call.id for call in [*live, *ended]], actor=actor, justification="board"
    )
    handlers = (
        await session.scalars(
            select(Staff).where(Staff.role == Role.handler.value, Staff.active.is_(True))
        )
    ).all()
    answered: dict[str, int] = {}
    for call in live:
        if call.state in ON_A_CALL and call.handler_id:
            answered[call.handler_id] = answered.get(call.handler_id, 0) + 1
    return {
        "calls": rows[: len(live)],
        "recently_ended": rows[len(live) :],
        "recent_window_minutes": int(RECENT_WINDOW.total_seconds() // 60),
        "counters": await _counters(session, now),
        "escalate_after_seconds": escalate_after_seconds,
        "handlers": [
            {"id": s.id, "name": s.name, "answered_calls": answered.get(s.id, 0)}
            for s in sorted(handlers, key=lambda s: s.id)
        ],
    }
