"""The `near_repeat` condition: recent incidents at other households near the caller's
(domain.md C.15). Split from the engine, which calls it; pure like the engine."""

from __future__ import annotations

from datetime import timedelta

from app.rules.facts import CallerFacts
from app.rules.items import Item
from app.rules.ruleset import RuleSet
from app.rules.schema import NearRepeatCondition


def near_repeat(
    packs: RuleSet, facts: CallerFacts, condition: NearRepeatCondition
) -> list[Item] | None:
    """One item per nearby incident, nearest first; the edges count (exactly
    `within_metres` away, exactly `within_days` ago)."""
    now = facts.now
    since = now - timedelta(days=condition.within_days)
    types = frozenset(condition.incident_types)
    chosen = sorted(
        (
            n
            for n in facts.nearby
            if n.incident_type in types
            and since <= n.occurred_at <= now
            and n.distance_m <= condition.within_metres
        ),
        key=lambda n: (n.distance_m, n.id),
    )
    items = []
    for n in chosen:
        known = packs.incident_types.get(n.incident_type)
        incident = known.name.lower() if known else n.incident_type.replace("_", " ")
        metres = round(n.distance_m)
        days_ago = (now - n.occurred_at).days
        when = "today" if days_ago == 0 else f"{days_ago} day{'s' * (days_ago != 1)} ago"
        items.append(
            Item(
                "near_repeat",
                {
                    "count": len(chosen),
                    "within_metres": condition.within_metres,
                    "within_days": condition.within_days,
                    "incident": incident,
                    "metres": metres,
                    "days_ago": days_ago,
                },
                evidence=[n.id],
                tags=[n.incident_type],
                default_reason=f"a {incident} {metres} m away, {when}",
                evidence_lines=[f"A {incident} {metres} m away, {when}"],
                category="history",
            )
        )
    return items or None
