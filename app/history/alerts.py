"""Alerts for a call: the rule engine plans them (pure), this module stores them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.history.models import Alert, AlertAcknowledgement
from app.metrics.catalogue import ALERTS
from app.resources import Resources
from app.rules import engine
from app.rules.facts import CallerFacts, PlannedAlert
from app.rules.ruleset import RuleSet

SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
FLAG_FROM = SEVERITY_RANK["medium"]


def ruleset(resources: Resources) -> RuleSet:
    """The rule packs in force (take it once per event: a reload swaps the whole set)."""
    return resources.rules


def horizon_days(resources: Resources) -> int:
    """How far back a lookup reads: the configured horizon, never less than the longest
    window a loaded rule counts over."""
    return max(resources.settings.history_horizon_days, ruleset(resources).horizon_days)


def plan(resources: Resources, facts: CallerFacts) -> list[PlannedAlert]:
    """Ask the rule engine (pure, no I/O) what to raise for these facts."""
    planned: list[PlannedAlert] = engine.evaluate(ruleset(resources), facts)
    return planned


def flags_call(alerts: list[PlannedAlert]) -> bool:
    return any(SEVERITY_RANK.get(a.severity, 0) >= FLAG_FROM for a in alerts)


def store(session: AsyncSession, call_id: int, planned: list[PlannedAlert]) -> list[Alert]:
    """Add the planned alerts to the session: they are inserted, and get their ids, at its next
    flush (a batch's alerts go in together)."""
    rows = raised(call_id, planned)
    session.add_all(rows)
    return rows


def raised(call_id: int, planned: list[PlannedAlert]) -> list[Alert]:
    """The planned alerts as rows to insert (`values`), not added to any session (counted as
    raised: the caller inserts them in the same transaction)."""
    rows = unraised(call_id, planned, [None] * len(planned))
    count(planned)
    return rows


def unraised(call_id: int, planned: list[PlannedAlert], ids: list[int | None]) -> list[Alert]:
    """`raised` with the ids taken ahead (app.id_blocks), not counted yet: the express path
    counts them (`count`) once the statement that inserts them has."""
    now = utcnow()
    rows = []
    for a, alert_id in zip(planned, ids, strict=True):
        row = Alert(
            call_id=call_id,
            kind=a.kind,
            severity=a.severity,
            title=a.title,
            reasons=list(a.reasons),
            evidence=list(a.evidence),
            rule=a.rule,
            tags=list(a.tags),
            suggested_grade=a.suggested_grade,
            category=a.category,
            evidence_lines=list(a.evidence_lines),
            raised_at=now,
        )
        if alert_id is not None:
            row.id = alert_id
        rows.append(row)
    return rows


def count(planned: list[PlannedAlert]) -> None:
    for alert in planned:
        ALERTS.inc(alert.rule)


# What `values` reads of an alert row (its id comes with the insert; its acknowledgement later).
_COLUMNS = (
    "call_id", "kind", "severity", "title", "reasons", "evidence", "rule", "tags",
    "suggested_grade", "category", "evidence_lines", "raised_at",
)  # fmt: skip


def values(alert: Alert) -> dict[str, Any]:
    """An alert row's columns, for an insert of rows (app.history.tx_state)."""
    return {name: getattr(alert, name) for name in _COLUMNS}


def values_with_id(alert: Alert) -> dict[str, Any]:
    """`values` and the id taken ahead (`unraised`)."""
    return {"id": alert.id, **values(alert)}


def as_dict(
    alert: Alert | Row[Any], acknowledgements: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The alert as the realtime step and the REST API show it; `acknowledgements` are its
    per-person rows (`acknowledgements_of`), none for an alert just raised."""
    return {
        "alert_id": alert.id,
        "kind": alert.kind,
        "severity": alert.severity,
        "title": alert.title,
        "reasons": list(alert.reasons),
        "evidence": list(alert.evidence),
        "rule": alert.rule,
        "tags": list(alert.tags),
        "suggested_grade": alert.suggested_grade,
        "category": alert.category,
        "evidence_lines": list(alert.evidence_lines or []),
        "raised_at": alert.raised_at.isoformat(),
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledgements": acknowledgements or [],
    }


def ack_dict(row: AlertAcknowledgement) -> dict[str, Any]:
    return {
        "staff_id": row.staff_id,
        "role": row.role,
        "acknowledged_at": row.acknowledged_at.isoformat(),
    }


async def acknowledgements_of(
    session: AsyncSession, alert_ids: Iterable[int]
) -> dict[int, list[dict[str, Any]]]:
    """Each alert's acknowledgements, one per person, oldest first."""
    ids = list(alert_ids)
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        rows = await session.scalars(
            select(AlertAcknowledgement)
            .where(AlertAcknowledgement.alert_id.in_(ids))
            .order_by(AlertAcknowledgement.acknowledged_at, AlertAcknowledgement.id)
        )
        for row in rows:
            found[row.alert_id].append(ack_dict(row))
    return found


async def dicts_with_acks(session: AsyncSession, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    """The alerts as `as_dict` shows them, each with its acknowledgements."""
    acks = await acknowledgements_of(session, (a.id for a in alerts))
    return [as_dict(a, acks[a.id]) for a in alerts]


async def for_call(session: AsyncSession, call_id: int) -> list[Alert]:
    return list(
        await session.scalars(select(Alert).where(Alert.call_id == call_id).order_by(Alert.id))
    )
