"""A rule's escalations (a higher severity when the recency score reaches a value or another
condition holds) and the recency score they read. Split from the engine, which calls it;
`holds` is the engine's condition test, passed in so this module stays below the engine."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from app.rules.facts import PlannedAlert
from app.rules.items import Item
from app.rules.ruleset import RuleRef
from app.rules.schema import Condition

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def recency_score(ages: Iterable[timedelta], half_life_days: float) -> float:
    """Sum of 0.5 ** (age / half-life) over the incidents' ages: one today weighs 1."""
    half_life = half_life_days * 86_400
    return float(sum(0.5 ** (max(age.total_seconds(), 0.0) / half_life) for age in ages))


def escalate(
    ref: RuleRef,
    alert: PlannedAlert,
    items: list[Item],
    holds: Callable[[Condition], list[Item] | None],
) -> PlannedAlert:
    """The alert with its severity raised by the rule's escalations that hold (never lowered)."""
    rule = ref.rule
    if not rule.escalate:
        return alert
    score = max((float(i.values.get("score_value", 0.0)) for i in items), default=0.0)
    severity, grade = alert.severity, alert.suggested_grade
    reasons, evidence, tags = list(alert.reasons), list(alert.evidence), list(alert.tags)
    for escalation in rule.escalate:
        if escalation.score_at_least is not None and score < escalation.score_at_least:
            continue
        extra: list[Item] = []
        if escalation.when is not None:
            held = holds(escalation.when)
            if held is None:
                continue
            extra = held
        if SEVERITY_ORDER[escalation.severity] >= SEVERITY_ORDER[severity]:
            continue  # not higher than what it already is
        severity = escalation.severity
        if escalation.suggest_grade is not None:
            grade = escalation.suggest_grade
        for item in extra:
            if item.default_reason and item.default_reason not in reasons:
                reasons.append(item.default_reason)
            evidence.extend(e for e in item.evidence if e not in evidence)
            tags.extend(t for t in item.tags if t not in tags)
    return alert.model_copy(
        update={
            "severity": severity,
            "suggested_grade": grade,
            "reasons": reasons,
            "evidence": evidence,
            "tags": tags,
        }
    )
