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

from app.rules import wording
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
    ThisCallCondition,
)

_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
# When one alert matches markers of several categories it takes the first of these.
CATEGORY_ORDER = ("officer_safety", "safeguarding", "orders", "needs", "history")
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
    # What the handler reads as evidence (plain words, no ids), and the item's category.
    evidence_lines: list[str] = field(default_factory=list)
    category: str | None = None


def evaluate(packs: RuleSet, facts: CallerFacts) -> list[PlannedAlert]:
    """The alerts the loaded rules raise for these facts: officer safety first (the
    handler passes it on to whoever attends, whatever else is raised), then most severe
    first."""
    ctx = _Context(packs, facts)
    alerts: list[tuple[int, int, int, PlannedAlert]] = []
    for order, ref in enumerate(packs.alert_rules):
        if not ref.rule.enabled:
            continue
        items = ctx.holds(ref.rule.when)
        if items is None:
            continue
        alert = _escalate(ref, _plan(ref, items), items, ctx)
        first = 0 if alert.category == "officer_safety" else 1
        alerts.append((first, _SEVERITY_ORDER[alert.severity], order, alert))
    alerts.sort(key=lambda entry: entry[:3])
    return [alert for _, _, _, alert in alerts]


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
        if isinstance(condition, ThisCallCondition):
            return self._this_call(condition)
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
            if scope == "number" or (
                scope == "number_if_no_person"
                and not any(p.relationship == "caller" for p in facts.persons)
            ):
                if facts.number is not None:
                    yield "this number", facts.number_contacts
            elif scope == "person":
                for person in facts.persons:
                    if person.relationship == "caller":
                        yield wording.person_words(person, facts.now), person.contacts
            elif scope == "household":
                for household in facts.households:
                    yield wording.household_words(household), household.contacts

    def _category(self, contact: ContactRef) -> str:
        """crime, asb or other, from the incident-type catalogue; unknown without one."""
        itype = self.packs.incident_types.get(contact.incident_type or "")
        return itype.category if itype is not None and itype.category else "unknown"

    def _count(self, condition: CountCondition) -> list[Item] | None:
        now = self.facts.now
        since = now - timedelta(days=condition.within_days)
        types = frozenset(condition.incident_types)
        categories = frozenset(condition.categories)
        compare = _COMPARE[condition.op]
        items = []
        counted: list[tuple[str, list[ContactRef]]] = []
        for subject, contacts in self._subjects(condition.per):
            chosen = [
                c
                for c in contacts
                if c.occurred_at >= since
                and (condition.fact != "victim_contacts" or c.victim)
                and (condition.fact != "da_contacts" or c.domestic_abuse)
                and (not types or c.incident_type in types)
                and (not categories or self._category(c) in categories)
            ]
            if not compare(len(chosen), condition.value):
                continue
            chosen.sort(key=lambda c: c.occurred_at, reverse=True)
            words = _FACT_WORDS[condition.fact]
            values: dict[str, Any] = {
                "subject": subject,
                "count": len(chosen),
                "count_with_this": len(chosen) + 1,
                "threshold": condition.value,
                "within_days": condition.within_days,
                "fact": words,
            }
            reason = (
                f"{len(chosen)} {words} in the last {condition.within_days} days "
                f"for {subject} (threshold {condition.op} {condition.value})"
            )
            if chosen:
                values["last_days_ago"] = _days(now - chosen[0].occurred_at)
            if condition.half_life_days is not None:
                score = recency_score(
                    [now - c.occurred_at for c in chosen], condition.half_life_days
                )
                values["score"] = f"{score:.1f}"
                values["score_value"] = score
                reason += (
                    f"; recency score {score:.1f} (each incident counts 1 today, half as much "
                    f"after {_days(timedelta(days=condition.half_life_days))} days)"
                )
            items.append(
                Item(
                    "count",
                    values,
                    evidence=[c.id for c in chosen],
                    default_reason=reason,
                    category="history",
                )
            )
            counted.append((subject, chosen))
        self._evidence_lines(items, counted, condition)
        return items or None

    # ---- this call ------------------------------------------------------------------

    def _this_call(self, condition: ThisCallCondition) -> list[Item] | None:
        call = self.facts.call
        itype = call.incident_type
        if itype is not None and itype in condition.incident_types:
            known = self.packs.incident_types.get(itype)
            name = known.name if known is not None else itype.replace("_", " ")
            words = name[:1].lower() + name[1:]
            return [Item("this_call", {"call_is": words}, default_reason=f"this call is {words}")]
        for qualifier in call.qualifiers:
            if qualifier in condition.qualifiers:
                words = qualifier.replace("_", " ")
                return [
                    Item("this_call", {"call_is": words}, default_reason=f"this call is {words}")
                ]
        return None

    def _evidence_lines(
        self,
        items: list[Item],
        counted: list[tuple[str, list[ContactRef]]],
        condition: CountCondition,
    ) -> None:
        """Grouped evidence, on the first item of each set of subjects that counted the very
        same contacts (the number, its caller, their household): one set of lines naming
        them together rather than the same lines once for each."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(tuple(item.evidence), []).append(index)
        for indexes in groups.values():
            first = indexes[0]
            items[first].evidence_lines = wording.contact_lines(
                wording.join_words([counted[i][0] for i in indexes]),
                counted[first][1],
                fact=_FACT_WORDS[condition.fact],
                within_days=condition.within_days,
                now=self.facts.now,
                incident_names=self.packs.incident_names,
            )

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
                    evidence_lines=[f"A {incident} {metres} m away, {when}"],
                    category="history",
                )
            )
        return items or None

    # ---- markers --------------------------------------------------------------------

    def _markers(self, condition: MarkerCondition) -> list[Item] | None:
        facts = self.facts
        kinds = frozenset(condition.kinds)
        categories = frozenset(condition.categories)
        holders: list[tuple[str, str, Sequence[MarkerRef]]] = []
        for person in facts.persons:
            if person.relationship == "caller" and "caller" in condition.of:
                holders.append(
                    (wording.person_words(person, facts.now), "the caller", person.markers)
                )
            elif person.relationship == "household_member" and "household_member" in condition.of:
                holders.append(
                    (
                        wording.person_words(person, facts.now),
                        wording.relation_words(person),
                        person.markers,
                    )
                )
        if "household" in condition.of:
            for household in facts.households:
                holders.append(
                    (
                        wording.household_words(household),
                        "the caller's household",
                        household.markers,
                    )
                )
        items = []
        for who, relationship, markers in holders:
            for marker in markers:
                if kinds and marker.kind not in kinds:
                    continue
                # A kind missing from the catalogue has no category: only an unfiltered
                # condition shows it.
                category = self.packs.marker_categories.get(marker.kind)
                if categories and category not in categories:
                    continue
                if condition.set_within_days is None:
                    if not marker.active_at(facts.now):
                        continue
                elif not (
                    facts.now - timedelta(days=condition.set_within_days)
                    <= marker.set_at
                    <= facts.now
                ):
                    continue
                label = self.packs.marker_labels.get(marker.kind, _plain(marker.kind))
                items.append(
                    Item(
                        "markers",
                        {
                            "subject": who,
                            "who": who,
                            "relationship": relationship,
                            "marker": label,
                            "marker_kind": marker.kind,
                            "category": _plain(category or "marker"),
                        },
                        evidence=[marker.id],
                        tags=[marker.kind],
                        default_reason=f"{who} has an active {label} marker",
                        evidence_lines=[wording.marker_line(who, label, category, marker)],
                        category=category,
                    )
                )
        return items or None


def recency_score(ages: Iterable[timedelta], half_life_days: float) -> float:
    """Sum of 0.5 ** (age / half-life) over the incidents' ages: one today weighs 1."""
    half_life = half_life_days * 86_400
    return float(sum(0.5 ** (max(age.total_seconds(), 0.0) / half_life) for age in ages))


def _days(span: timedelta) -> int:
    return int(span.total_seconds() // 86_400)


def _escalate(ref: RuleRef, alert: PlannedAlert, items: list[Item], ctx: _Context) -> PlannedAlert:
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
            held = ctx.holds(escalation.when)
            if held is None:
                continue
            extra = held
        if _SEVERITY_ORDER[escalation.severity] >= _SEVERITY_ORDER[severity]:
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


def _plain(word: str) -> str:
    return word.replace("_", " ")


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
