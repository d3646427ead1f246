"""A rule that holds, turned into a planned alert: its title and reasons rendered from the
items' placeholders, their evidence and tags merged, its category chosen. Split from the
engine, which calls it."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from app.rules.facts import PlannedAlert
from app.rules.items import Item
from app.rules.ruleset import RuleRef

# When one alert matches markers of several categories it takes the first of these.
CATEGORY_ORDER = ("officer_safety", "safeguarding", "orders", "needs", "history")


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        # The loader refuses unknown placeholders; a known one is missing only when the branch
        # of an `any` that offers it did not hold.
        return "?"


def _placeholders(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


def render(template: str, values: dict[str, Any]) -> str:
    return string.Formatter().vformat(template, (), _Fields(values))


def plan(ref: RuleRef, items: list[Item]) -> PlannedAlert:
    rule = ref.rule
    merged: dict[str, Any] = {}
    for item in items:
        for key, value in item.values.items():
            merged.setdefault(key, value)  # the first item (the strongest reason) wins
    wanted = _placeholders(rule.reason) if rule.reason else frozenset()
    reasons = [
        render(rule.reason, i.values)
        if rule.reason and wanted <= i.values.keys()
        else i.default_reason
        for i in items
    ]
    evidence: list[str] = []
    lines: list[str] = []
    tags: list[str] = list(rule.tags)
    for item in items:
        for ev in item.evidence:
            if ev not in evidence:
                evidence.append(ev)
        for line in item.evidence_lines:
            if line not in lines:
                lines.append(line)
        for tag in item.tags:
            if tag not in tags:
                tags.append(tag)
    return PlannedAlert(
        kind=rule.alert,
        severity=rule.severity,
        title=render(rule.title, merged),
        reasons=[r for r in reasons if r] or [rule.description or rule.title],
        evidence=evidence,
        rule=ref.ref,
        tags=tags,
        suggested_grade=rule.suggest_grade,
        category=rule.category or category_of(items),
        evidence_lines=lines,
    )


def category_of(items: Sequence[Item]) -> str | None:
    """An alert's category from what matched: the first, in CATEGORY_ORDER, of its items'
    (officer safety wins over safeguarding); None when nothing matched carries one (a
    withheld number)."""
    found = {item.category for item in items}
    return next((c for c in CATEGORY_ORDER if c in found), None)
