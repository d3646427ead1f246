"""Issue 13, acceptance 1: every default alert rule, table-driven, at and above its threshold
and at its window's edge, counting the current call as forces count it (this call is the
second incident for a repeat victim, the third DA incident for MARAC's "3 or more in 12
months", the third ASB report for the case review). Pure engine: no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from app.history.alerts import flags_call
from app.rules.engine import evaluate
from app.rules.escalation import recency_score
from app.rules.facts import (
    CallerFacts,
    CallFacts,
    ContactRef,
    HouseholdFacts,
    MarkerRef,
    PersonFacts,
    PlannedAlert,
)
from tests.rules.support import ALERTS_VERSION, SHIPPED, caller, contact, marker

P1, P2, H1 = "P1", "P2", "H1"


def victim(cid: str, days: float, incident_type: str | None = "assault") -> ContactRef:
    return contact(cid, days, victim=True, incident_type=incident_type)


def da(cid: str, days: float) -> ContactRef:
    return contact(cid, days, domestic_abuse=True, incident_type="domestic_abuse")


def asb(cid: str, days: float) -> ContactRef:
    return contact(cid, days, incident_type="asb")


def missing(cid: str, days: float) -> ContactRef:
    return contact(cid, days, incident_type="missing_person")


def person(
    contacts: list[ContactRef] = (),  # type: ignore[assignment]
    markers: list[MarkerRef] = (),  # type: ignore[assignment]
) -> PersonFacts:
    return PersonFacts(id=P1, relationship="caller", contacts=list(contacts), markers=list(markers))


def household(
    contacts: list[ContactRef] = (),  # type: ignore[assignment]
    markers: list[MarkerRef] = (),  # type: ignore[assignment]
) -> HouseholdFacts:
    return HouseholdFacts(id=H1, contacts=list(contacts), markers=list(markers))


def on_call(facts: CallerFacts, incident_type: str | None = None, *qualifiers: str) -> CallerFacts:
    """The same caller once the handler has said what the call is."""
    return facts.model_copy(
        update={"call": CallFacts(incident_type=incident_type, qualifiers=list(qualifiers))}
    )


@dataclass
class Case:
    name: str
    facts: CallerFacts
    raised: bool
    severity: str | None = None  # checked when given
    extra: dict[str, str] = field(default_factory=dict)


def alert_of(alerts: list[PlannedAlert], kind: str) -> PlannedAlert | None:
    found = [a for a in alerts if a.kind == kind]
    assert len(found) <= 1, f"{kind} raised twice"
    return found[0] if found else None


# rule -> cases. Days are the age of each earlier contact at the call.
TABLE: dict[str, list[Case]] = {
    "repeat_victim": [
        Case("no earlier victim contact", caller(number_contacts=[contact("c", 5)]), False),
        Case("one earlier crime victim contact: this call the second",
             caller(number_contacts=[victim("v1", 100)]), True, "high"),
        Case("two earlier: above the threshold",
             caller(number_contacts=[victim("v1", 200), victim("v2", 300)]), True, "high"),
        Case("window edge: 365 days old counts", caller(number_contacts=[victim("v1", 365)]),
             True),
        Case("window edge: 366 days old does not", caller(number_contacts=[victim("v1", 366)]),
             False),
        Case("an ASB victim counts", caller(number_contacts=[victim("v1", 30, "asb")]), True),
        Case("a victim contact with no incident type counts",
             caller(number_contacts=[victim("v1", 30, None)]), True),
        Case("a concern-for-welfare contact is not crime or ASB",
             caller(number_contacts=[victim("v1", 30, "concern_for_welfare")]), False),
        Case("a missing-person contact is not crime or ASB",
             caller(number_contacts=[victim("v1", 30, "missing_person")]), False),
        Case("a non-victim crime contact does not count",
             caller(number_contacts=[contact("c1", 30, incident_type="burglary")]), False),
        Case("the person's own contact (made from another number)",
             caller(persons=[person([victim("v1", 40)])]), True),
        Case("a person known: another user's victim contact on the number does not count",
             caller(number_contacts=[victim("v9", 40)], persons=[person()]), False),
        Case("recency: two in the last month reach the score and raise it to critical",
             caller(number_contacts=[victim("v1", 3), victim("v2", 20)]), True, "critical"),
        Case("recency: the same two a year apart stay high",
             caller(number_contacts=[victim("v1", 200), victim("v2", 360)]), True, "high"),
    ],
    "da_escalation": [
        Case("one earlier DA contact", caller(number_contacts=[da("d1", 10)]), False),
        Case("two earlier DA contacts: this call the third",
             caller(number_contacts=[da("d1", 10), da("d2", 100)]), True, "high"),
        Case("three earlier: above", caller(number_contacts=[da(f"d{i}", 10 * i) for i in
                                                            (1, 2, 3)]), True),
        Case("window edge: the second at 365 days counts",
             caller(number_contacts=[da("d1", 10), da("d2", 365)]), True),
        Case("window edge: the second at 366 days does not",
             caller(number_contacts=[da("d1", 10), da("d2", 366)]), False),
        Case("per household (the location)",
             caller(households=[household([da("d1", 10), da("d2", 20)])]), True),
        Case("non-DA contacts do not count",
             caller(number_contacts=[da("d1", 10), contact("c2", 20, incident_type="assault")]),
             False),
    ],
    "asb_case_review": [
        Case("one earlier ASB report", caller(number_contacts=[asb("a1", 10)]), False),
        Case("two earlier ASB reports: this call the third",
             caller(number_contacts=[asb("a1", 10), asb("a2", 100)]), True, "medium"),
        Case("three earlier: above",
             caller(number_contacts=[asb("a1", 1), asb("a2", 2), asb("a3", 3)]), True),
        Case("window edge: the second at 183 days counts",
             caller(number_contacts=[asb("a1", 10), asb("a2", 183)]), True),
        Case("window edge: the second at 184 days does not",
             caller(number_contacts=[asb("a1", 10), asb("a2", 184)]), False),
        Case("crime reports are not ASB",
             caller(number_contacts=[asb("a1", 10), contact("c2", 20, incident_type="theft")]),
             False),
        Case("per household",
             caller(households=[household([asb("a1", 10), asb("a2", 20)])]), True),
    ],
    "marac_repeat": [
        Case("a DA call, active MARAC marker",
             on_call(caller(persons=[person(markers=[marker("m", "marac", P1, set_days=400)])]),
                     "domestic_abuse"), True, "high"),
        Case("at ring time nothing says the call is DA",
             caller(persons=[person(markers=[marker("m", "marac", P1)])]), False),
        Case("a DA qualifier on an assault call counts as a DA call",
             on_call(caller(persons=[person(markers=[marker("m", "marac", P1)])]), "assault",
                     "domestic_abuse"), True),
        Case("not a DA call", on_call(caller(persons=[person(markers=[marker("m", "marac",
                                                                               P1)])]),
                                      "burglary"), False),
        Case("window edge: referral (marker) 365 days ago, expired since, counts",
             on_call(caller(persons=[person(markers=[marker("m", "marac", P1, set_days=365,
                                                             expires_in=-100)])]),
                     "domestic_abuse"), True),
        Case("window edge: referral 366 days ago, expired, does not",
             on_call(caller(persons=[person(markers=[marker("m", "marac", P1, set_days=366,
                                                             expires_in=-1)])]),
                     "domestic_abuse"), False),
        Case("a household member's MARAC marker",
             on_call(caller(persons=[person(), PersonFacts(
                 id=P2, relationship="household_member", relation="partner",
                 markers=[marker("m", "marac", P2)])]), "domestic_abuse"), True),
        Case("no MARAC marker", on_call(caller(persons=[person()]), "domestic_abuse"), False),
    ],
    "repeat_missing": [
        Case("one earlier missing episode, call not yet typed",
             caller(number_contacts=[missing("x1", 30)]), False),
        Case("one earlier episode and this call a missing-person report: the second",
             on_call(caller(number_contacts=[missing("x1", 30)]), "missing_person"), True,
             "high"),
        Case("two earlier episodes: raised whatever the call",
             caller(households=[household([missing("x1", 30), missing("x2", 90)])]), True),
        Case("window edge: earlier episode 365 days ago counts",
             on_call(caller(number_contacts=[missing("x1", 365)]), "missing_person"), True),
        Case("window edge: 366 days ago does not",
             on_call(caller(number_contacts=[missing("x1", 366)]), "missing_person"), False),
        Case("a missing-person marker set this year, on a missing-person call",
             on_call(caller(persons=[person(markers=[marker("m", "missing_person", P1,
                                                             set_days=200, expires_in=-1)])]),
                     "missing_person"), True),
        Case("a missing-person call with no earlier episode",
             on_call(caller(), "missing_person"), False),
    ],
    "repeat_caller": [
        Case("two calls in 30 days", caller(number_contacts=[contact("c1", 1), contact("c2", 2)]),
             False),
        Case("three calls: information only",
             caller(number_contacts=[contact(f"c{i}", i) for i in (1, 2, 3)]), True, "info"),
        Case("window edge: the third at 30 days counts",
             caller(number_contacts=[contact("c1", 1), contact("c2", 2), contact("c3", 30)]),
             True, "info"),
        Case("window edge: the third at 31 days does not",
             caller(number_contacts=[contact("c1", 1), contact("c2", 2), contact("c3", 31)]),
             False),
        Case("with a vulnerability marker it is raised to medium",
             caller(number_contacts=[contact(f"c{i}", i) for i in (1, 2, 3)],
                    persons=[person(markers=[marker("m", "mental_health", P1)])]), True,
             "medium"),
    ],
}  # fmt: skip

CASES = [(rule, case) for rule, cases in TABLE.items() for case in cases]


@pytest.mark.parametrize(("rule", "case"), CASES, ids=[f"{r}: {c.name}" for r, c in CASES])
def test_default_rule(rule: str, case: Case) -> None:
    alert = alert_of(evaluate(SHIPPED, case.facts), rule)
    assert (alert is not None) is case.raised
    if alert is not None:
        assert alert.rule == f"{rule}@{ALERTS_VERSION}"
        if case.severity is not None:
            assert alert.severity == case.severity


def test_every_default_rule_is_in_the_table() -> None:
    shipped = {r.rule.id for r in SHIPPED.alert_rules if r.ref.endswith(ALERTS_VERSION)}
    # The others: tests/rules/test_engine.py (household risk, vulnerability marker, withheld
    # number), tests/rules/test_no_ids_in_words.py (officer safety, orders) and
    # tests/rules/test_near_repeat.py (near repeat, at its radius and window edges).
    others = {
        "near_repeat",
        "household_risk",
        "vulnerability_marker",
        "withheld_number",
        "officer_safety",
        "orders",
    }
    assert shipped == set(TABLE) | others


def test_repeat_victim_shows_the_score_in_plain_words() -> None:
    facts = caller(number_contacts=[victim("v1", 3), victim("v2", 20)])
    alert = alert_of(evaluate(SHIPPED, facts), "repeat_victim")
    assert alert is not None
    score = recency_score([timedelta(days=3), timedelta(days=20)], 90)
    assert 1.5 <= score < 2  # 0.977 + 0.857
    assert alert.title == (
        f"Repeat victim: this call would be incident 3 in 365 days (recency score {score:.1f})"
    )
    assert "each incident counts 1 today, half as much after 90 days" in alert.reasons[0]
    assert alert.suggested_grade == "priority"  # the rule's, kept when the severity rises


def test_recency_score_halves_each_half_life() -> None:
    assert recency_score([timedelta(0)], 90) == 1
    assert recency_score([timedelta(days=90)], 90) == pytest.approx(0.5)
    assert recency_score([timedelta(days=180), timedelta(days=90)], 90) == pytest.approx(0.75)
    assert recency_score([], 90) == 0


def test_repeat_caller_is_information_unless_vulnerable() -> None:
    plain = evaluate(SHIPPED, TABLE["repeat_caller"][1].facts)
    assert [a.kind for a in plain] == ["repeat_caller"]
    assert not flags_call(plain)  # not a flagged call on the supervisor board
    assert plain[0].suggested_grade is None
    vulnerable = alert_of(evaluate(SHIPPED, TABLE["repeat_caller"][4].facts), "repeat_caller")
    assert vulnerable is not None and flags_call([vulnerable])
    assert any("mental health" in r for r in vulnerable.reasons)


def test_da_escalation_counts_this_call_as_the_third() -> None:
    facts = caller(number_contacts=[da("d1", 10), da("d2", 100)])
    alert = alert_of(evaluate(SHIPPED, facts), "da_escalation")
    assert alert is not None
    assert "this call would be domestic abuse incident 3 in 365 days" in alert.title
    assert "MARAC" in alert.title


def test_marac_repeat_says_why() -> None:
    facts = on_call(caller(persons=[person(markers=[marker("m7", "marac", P1)])]), "domestic_abuse")
    alert = alert_of(evaluate(SHIPPED, facts), "marac_repeat")
    assert alert is not None
    assert alert.reasons[0] == "this call is domestic abuse"
    assert "MARAC case" in alert.reasons[1]
    assert alert.evidence == ["m7"]
    assert "domestic_abuse" in alert.tags
