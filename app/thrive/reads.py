"""What THRIVE+ reads of a call at call time and at submission: the alerts raised on it (as
the validation sees them), the keys prompt packs name, the cues its narrative raised, and the
packs in force."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.history import alerts as history_alerts
from app.resources import Resources
from app.rules.ruleset import RuleSet
from app.thrive.models import CallCue
from app.thrive.validation import (
    Alert,
)


async def call_alerts(session: AsyncSession, call_id: int) -> list[Alert]:
    return [
        Alert(
            kind=a.kind,
            severity=a.severity,
            suggested_grade=a.suggested_grade,
            tags=tuple(a.tags or ()),
        )
        for a in await history_alerts.for_call(session, call_id)
    ]


def alert_keys(alerts: Sequence[Alert]) -> list[str]:
    """Alert kinds and tags, the keys prompt packs name (a marker kind is a tag)."""
    keys: dict[str, None] = {}
    for alert in alerts:
        keys[alert.kind] = None
        for tag in alert.tags:
            keys[tag] = None
    return list(keys)


def rules_of(resources: Resources) -> RuleSet:
    return resources.rules


async def call_cues(session: AsyncSession, call_id: int) -> Sequence[CallCue]:
    return (
        await session.scalars(
            select(CallCue)
            .where(CallCue.call_id == call_id)
            .order_by(CallCue.detected_at, CallCue.cue_id)
        )
    ).all()
