"""Alert feedback (issue 15): a handler says an alert was helpful, not relevant, or about the
wrong person, in one click (a reason optional); supervisors and admins read each rule's
precision over the last days, on screen or as CSV. A rule that is often "not relevant" or
"wrong person" is one to retune in its pack: this is the evidence for it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls.models import Call
from app.cells import csv_writer
from app.db import upsert_for, utcnow
from app.errors import Forbidden
from app.history.models import FEEDBACK_VERDICTS, Alert, AlertFeedback


class NotAlertHandler(Forbidden):
    status, code = 403, "not_call_handler"


async def give(
    session: AsyncSession, alert: Alert, principal: Principal, verdict: str, reason: str | None
) -> AlertFeedback:
    """Record the principal's verdict on the alert (a handler of its call, now or earlier);
    giving it again replaces their earlier one."""
    call = await session.get(Call, alert.call_id)
    if call is None or not policy.allows_on(principal, Capability.give_alert_feedback, call):
        raise NotAlertHandler("only a handler of the alert's call can give feedback on it")
    now = utcnow()
    values = {"verdict": verdict, "reason": reason or None, "given_at": now}
    await session.execute(
        upsert_for(session, AlertFeedback)
        .values(alert_id=alert.id, staff_id=principal.id, **values)
        .on_conflict_do_update(
            index_elements=[AlertFeedback.alert_id, AlertFeedback.staff_id], set_=values
        )
    )
    row = await session.scalar(
        select(AlertFeedback)
        .where(AlertFeedback.alert_id == alert.id, AlertFeedback.staff_id == principal.id)
        .execution_options(populate_existing=True)
    )
    assert row is not None  # written just above
    return row


async def given_by(
    session: AsyncSession, staff_id: str, alert_ids: list[int]
) -> dict[int, AlertFeedback]:
    """The staff member's own feedback on these alerts (a reloaded screen shows it)."""
    if not alert_ids:
        return {}
    rows = await session.scalars(
        select(AlertFeedback).where(
            AlertFeedback.staff_id == staff_id, AlertFeedback.alert_id.in_(alert_ids)
        )
    )
    return {row.alert_id: row for row in rows}


def feedback_view(row: AlertFeedback) -> dict[str, Any]:
    return {
        "alert_id": row.alert_id,
        "staff_id": row.staff_id,
        "verdict": row.verdict,
        "reason": row.reason,
        "given_at": row.given_at,
    }


@dataclass(frozen=True)
class RulePrecision:
    rule: str  # the rule's id in its pack (versions counted together)
    versions: list[str]
    raised: int  # alerts the rule raised in the window
    rated: int  # pieces of feedback on them
    helpful: int
    not_relevant: int
    wrong_person: int

    @property
    def precision(self) -> float | None:
        """Helpful among the rated: None until someone rated one."""
        return round(self.helpful / self.rated, 4) if self.rated else None


def rule_id(rule: str) -> tuple[str, str]:
    """'repeat_victim@3' -> ('repeat_victim', '3')."""
    name, _, version = rule.partition("@")
    return name, version


async def precision(
    session: AsyncSession, days: int, now: datetime | None = None
) -> tuple[datetime, datetime, list[RulePrecision]]:
    """Each rule's alerts raised in the last `days` and the feedback given on them."""
    until = now or utcnow()
    since = until - timedelta(days=days)
    in_window = (Alert.raised_at >= since, Alert.raised_at < until)
    raised = await session.execute(
        select(Alert.rule, func.count()).where(*in_window).group_by(Alert.rule)
    )
    rated = await session.execute(
        select(Alert.rule, AlertFeedback.verdict, func.count())
        .join(AlertFeedback, AlertFeedback.alert_id == Alert.id)
        .where(*in_window)
        .group_by(Alert.rule, AlertFeedback.verdict)
    )
    counts: dict[str, dict[str, int]] = {}
    versions: dict[str, set[str]] = {}
    for rule, n in raised:
        name, version = rule_id(rule)
        counts.setdefault(name, {}).setdefault("raised", 0)
        counts[name]["raised"] += n
        versions.setdefault(name, set()).add(version)
    for rule, verdict, n in rated:
        name, _ = rule_id(rule)
        counts[name][verdict] = counts[name].get(verdict, 0) + n
    out = [
        RulePrecision(
            rule=name,
            versions=sorted(versions[name]),
            raised=c["raised"],
            rated=sum(c.get(v, 0) for v in FEEDBACK_VERDICTS),
            helpful=c.get("helpful", 0),
            not_relevant=c.get("not_relevant", 0),
            wrong_person=c.get("wrong_person", 0),
        )
        for name, c in sorted(counts.items())
    ]
    return since, until, out


CSV_COLUMNS = (
    "rule",
    "versions",
    "raised",
    "rated",
    "helpful",
    "not_relevant",
    "wrong_person",
    "precision",
)


def to_csv(rules: list[RulePrecision]) -> str:
    out = io.StringIO()
    writer = csv_writer(out)  # rule ids come from a force's packs: cells neutralised
    writer.writerow(CSV_COLUMNS)
    for r in rules:
        row = (
            r.rule,
            ";".join(r.versions),
            r.raised,
            r.rated,
            r.helpful,
            r.not_relevant,
            r.wrong_person,
            "" if r.precision is None else f"{r.precision:.4f}",
        )
        writer.writerow(row)
    return out.getvalue()
