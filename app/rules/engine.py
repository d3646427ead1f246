"""The alert engine: caller facts in, planned alerts out. Pure: no I/O, no clock, no logging.

Conditions are evaluated lazily: `all` stops at the first that fails, `any` at the first that
holds, and nothing is counted unless a condition asks for it. A condition that holds returns
the items that justify it (one per subject: a person, a household, the number), and those
become the alert's reasons and evidence.
"""

from __future__ import annotations

import operator
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from app.rules.facts import CallerFacts, ContactRef, MarkerRef, PlannedAlert
from app.rules.ruleset import RuleRef, RuleSet
from app.rules.schema import (
    AllCondition,
    AnyCondition,
    Condition,
    CountCondition,
    MarkerCondition,
    NearRepeatCondition,
    NotCondition,
    PresentationCondition,
)

_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_FACT_WORDS = {
    "contacts": "contacts",
    "victim_contacts": "victim contacts",
    "da_contacts": "domestic abuse incidents",
}
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass
class Item:
    """One reason a condition holds, with the placeholders its templates may use."""

    kind: str  # the condition kind that produced it
    values: dict[str, Any]
    evidence: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    default_reason: str = ""


def evaluate(packs: RuleSet, facts: CallerFacts) -> list[PlannedAlert]:
    """The alerts the loaded rules raise for these facts, most severe first."""
    ctx = _Context(packs, facts)
    alerts: list[tuple[int, int, PlannedAlert]] = []
    for order, ref in enumerate(packs.alert_rules):
        if not ref.rule.enabled:
            continue
        items = ctx.holds(ref.rule.when)
        if items is None:
            continue
        alert = _plan(ref, items)
        alerts.append((_SEVERITY_ORDER[alert.severity], order, alert))
    alerts.sort(key=lambda entry: (entry[0], entry[1]))
    return [alert for _, _, alert in alerts]


class _Context:
    def __init__(self, packs: RuleSet, facts: CallerFacts) -> None:
        self.packs = packs
        self.facts = facts

    def holds(self, condition: Condition) -> list[Item] | None:
        """None when the condition does not hold; otherwise the items that justify it."""
        if isinstance(condition, CountCondition):
            return self._count(condition)
        if isinstance(condition, MarkerCondition):
            return self._markers(condition)
        if isinstance(condition, NearRepeatCondition):
            return self._near(condition)
        if isinstance(condition, PresentationCondition):
            if self.facts.presentation in condition.any_of:
                return [
                    Item(
                        "presentation",
                        {"presentation": self.facts.presentation},
                        # An allowed number is the normal case: nothing worth a reason line.
                        default_reason=(
                            ""
                            if self.facts.presentation == "allowed"
                            else f"the number was {self.facts.presentation}"
                        ),
                    )
                ]
            return None
        if isinstance(condition, AllCondition):
            collected: list[Item] = []
            for part in condition.of:
                items = self.holds(part)
                if items is None:
                    return None
                collected.extend(items)
            return collected
        if isinstance(condition, AnyCondition):
            for part in condition.of:
                items = self.holds(part)
                if items is not None:
                    return items
            return None
        if isinstance(condition, NotCondition):
            return None if self.holds(condition.condition) is not None else []
        raise TypeError(f"unknown condition {condition!r}")  # unreachable: schema is closed

    # ---- count ----------------------------------------------------------------------

    def _subjects(self, per: Sequence[str]) -> Iterable[tuple[str, Sequence[ContactRef]]]:
        facts = self.facts
        for scope in per:
            if scope == "number":
                if facts.number is not None:
                    yield "this number", facts.number_contacts
            elif scope == "person":
                for person in facts.persons:
                    if person.relationship == "caller":
                        yield f"caller person {person.id}", person.contacts
            elif scope == "household":
                for household in facts.households:
                    yield f"household {household.id}", household.contacts

    def _count(self, condition: CountCondition) -> list[Item] | None:
        since = self.facts.now - timedelta(days=condition.within_days)
        types = frozenset(condition.incident_types)
        compare = _COMPARE[condition.op]
        items = []
        for subject, contacts in self._subjects(condition.per):
            chosen = [
                c
                for c in contacts
                if c.occurred_at >= since
                and (condition.fact != "victim_contacts" or c.victim)
                and (condition.fact != "da_contacts" or c.domestic_abuse)
                and (not types or c.incident_type in types)
            ]
            if not compare(len(chosen), condition.value):
                continue
            chosen.sort(key=lambda c: c.occurred_at, reverse=True)
            words = _FACT_WORDS[condition.fact]
            items.append(
                Item(
                    "count",
                    {
                        "subject": subject,
                        "count": len(chosen),
                        "threshold": condition.value,
                        "within_days": condition.within_days,
                        "fact": words,
                    },
                    evidence=[c.id for c in chosen],
                    default_reason=(
                        f"{len(chosen)} {words} in the last {condition.within_days} days "
                        f"for {subject} (threshold {condition.op} {condition.value})"
                    ),
                )
            )
        return items or None

    # ---- near repeat ----------------------------------------------------------------

    def _near(self, condition: NearRepeatCondition) -> list[Item] | None:
        """One item per nearby incident, nearest first; the edges count (exactly
        `within_metres` away, exactly `within_days` ago)."""
        now = self.facts.now
        since = now - timedelta(days=condition.within_days)
        types = frozenset(condition.incident_types)
        chosen = sorted(
            (
                n
                for n in self.facts.nearby
                if n.incident_type in types
                and since <= n.occurred_at <= now
                and n.distance_m <= condition.within_metres
            ),
            key=lambda n: (n.distance_m, n.id),
        )
        items = []
        for n in chosen:
            known = self.packs.incident_types.get(n.incident_type)
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
                )
            )
        return items or None

    # ---- markers --------------------------------------------------------------------

    def _markers(self, condition: MarkerCondition) -> list[Item] | None:
        facts = self.facts
        kinds = frozenset(condition.kinds)
        holders: list[tuple[str, str, Sequence[MarkerRef]]] = []
        for person in facts.persons:
            if person.relationship == "caller" and "caller" in condition.of:
                holders.append((f"caller person {person.id}", "the caller", person.markers))
            elif person.relationship == "household_member" and "household_member" in condition.of:
                shared = ", ".join(person.household_ids) or "the caller's household"
                holders.append(
                    (
                        f"person {person.id}, lives with the caller at household {shared}",
                        f"the caller's {person.relation}"
                        if person.relation
                        else "a household member",
                        person.markers,
                    )
                )
        if "household" in condition.of:
            for household in facts.households:
                holders.append(
                    (f"household {household.id}", "the caller's household", household.markers)
                )
        items = []
        for subject, relationship, markers in holders:
            for marker in markers:
                if kinds and marker.kind not in kinds:
                    continue
                if not marker.active_at(facts.now):
                    continue
                label = self.packs.marker_labels.get(marker.kind, marker.kind)
                items.append(
                    Item(
                        "markers",
                        {
                            "subject": subject,
                            "relationship": relationship,
                            "marker": label,
                            "marker_kind": marker.kind,
                        },
                        evidence=[marker.id],
                        tags=[marker.kind],
                        default_reason=f"{relationship} ({subject}) has an active {label} marker",
                    )
                )
        return items or None


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        # The loader refuses unknown placeholders; a known one is missing only when the branch
        # of an `any` that offers it did not hold.
        return "?"


def _placeholders(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


def render(template: str, values: dict[str, Any]) -> str:
    return string.Formatter().vformat(template, (), _Fields(values))


def _plan(ref: RuleRef, items: list[Item]) -> PlannedAlert:
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
    tags: list[str] = list(rule.tags)
    for item in items:
        for ev in item.evidence:
            if ev not in evidence:
                evidence.append(ev)
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
    )
