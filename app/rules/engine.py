"""The alert engine: caller facts in, planned alerts out. Pure: no I/O, no clock, no logging.

Conditions are evaluated lazily: `all` stops at the first that fails, `any` at the first that
holds, and nothing is counted unless a condition asks for it. A condition that holds returns
the items that justify it (one per subject: a person, a household, the number), and those
become the alert's reasons and evidence (app/rules/items.py). The near-repeat condition is
evaluated in near_repeat.py, escalations and the recency score in escalation.py, and the
planned alert is rendered in planning.py.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from app.rules import wording
from app.rules.escalation import SEVERITY_ORDER, escalate, recency_score
from app.rules.facts import CallerFacts, ContactRef, MarkerRef, PlannedAlert
from app.rules.items import Item
from app.rules.near_repeat import near_repeat
from app.rules.planning import plan
from app.rules.ruleset import RuleSet
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
        alert = escalate(ref, plan(ref, items), items, ctx.holds)
        first = 0 if alert.category == "officer_safety" else 1
        alerts.append((first, SEVERITY_ORDER[alert.severity], order, alert))
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
            return near_repeat(self.packs, self.facts, condition)
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


def _days(span: timedelta) -> int:
    return int(span.total_seconds() // 86_400)


def _plain(word: str) -> str:
    return word.replace("_", " ")
