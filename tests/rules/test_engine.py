"""The alert engine, table-driven, on the shipped default pack (and edited copies of it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.rules.engine import evaluate
from app.rules.facts import CallerFacts, HouseholdFacts, PersonFacts, PlannedAlert
from tests.rules.support import (
    ALERTS_VERSION as VERSION,
)
from tests.rules.support import (
    SHIPPED,
    caller,
    contact,
    marker,
    shipped_text,
    with_override,
)


def kinds(alerts: list[PlannedAlert]) -> list[str]:
    return sorted(a.kind for a in alerts)


def one(alerts: list[PlannedAlert], kind: str) -> PlannedAlert:
    found = [a for a in alerts if a.kind == kind]
    assert len(found) == 1, f"expected one {kind}, got {kinds(alerts)}"
    return found[0]


def victim(cid: str, days: float, **kw: object) -> object:
    return contact(cid, days, victim=True, **kw)  # type: ignore[arg-type]


P1 = "P1"
H1 = "H1"

CASES: list[tuple[str, CallerFacts, list[str]]] = [
    # -- repeat victim: >= 1 earlier victim contact in 365 days (this call the second), the
    # person's, or the number's when no person is known --
    (
        "number with two victim contacts this year",
        caller(number_contacts=[contact("c1", 10, victim=True), contact("c2", 200, victim=True)]),
        ["repeat_victim"],
    ),
    (
        "number with one victim contact",
        caller(number_contacts=[contact("c1", 10, victim=True), contact("c2", 20)]),
        ["repeat_victim"],
    ),
    (
        "a victim contact 366 days old does not count",
        caller(number_contacts=[contact("c1", 20), contact("c2", 366, victim=True)]),
        [],
    ),
    (
        "second victim contact exactly 365 days old counts",
        caller(number_contacts=[contact("c1", 10, victim=True), contact("c2", 365, victim=True)]),
        ["repeat_victim"],
    ),
    (
        "same person, contacts from other numbers",
        caller(
            persons=[
                PersonFacts(
                    id=P1,
                    relationship="caller",
                    contacts=[contact("c1", 5, victim=True), contact("c2", 90, victim=True)],
                )
            ]
        ),
        ["repeat_victim"],
    ),
    (
        "a household's victim contacts are not the caller's (person, or number with no person)",
        caller(
            households=[
                HouseholdFacts(
                    id=H1,
                    contacts=[
                        contact("c1", 5, victim=True, person_id="P1"),
                        contact("c2", 50, victim=True, person_id="P2"),
                    ],
                )
            ]
        ),
        [],
    ),
    (
        "a household member's own victim contacts are not the caller's",
        caller(
            persons=[
                PersonFacts(id=P1, relationship="caller"),
                PersonFacts(
                    id="P2",
                    relationship="household_member",
                    contacts=[contact("c1", 5, victim=True), contact("c2", 9, victim=True)],
                ),
            ]
        ),
        [],
    ),
    # -- repeat caller: >= 3 calls from the number in 30 days (information only) --
    (
        "three calls from the number in 30 days",
        caller(number_contacts=[contact("c1", 1), contact("c2", 10), contact("c3", 29)]),
        ["repeat_caller"],
    ),
    (
        "third call 31 days ago is outside the window",
        caller(number_contacts=[contact("c1", 1), contact("c2", 10), contact("c3", 31)]),
        [],
    ),
    # -- household risk --
    (
        "household member with an active DA high-risk marker",
        caller(
            persons=[
                PersonFacts(id=P1, relationship="caller", household_ids=[H1]),
                PersonFacts(
                    id="P2",
                    relationship="household_member",
                    relation="partner",
                    household_ids=[H1],
                    markers=[marker("m1", "da_high_risk", "P2")],
                ),
            ],
            households=[HouseholdFacts(id=H1, member_ids=[P1, "P2"])],
        ),
        ["household_risk"],
    ),
    (
        "household member's marker expired yesterday",
        caller(
            persons=[
                PersonFacts(id=P1, relationship="caller"),
                PersonFacts(
                    id="P2",
                    relationship="household_member",
                    markers=[marker("m1", "da_high_risk", "P2", expires_in=-1)],
                ),
            ]
        ),
        [],
    ),
    (
        "marker set in the future is not active yet",
        caller(
            persons=[
                PersonFacts(id=P1, relationship="caller"),
                PersonFacts(
                    id="P2",
                    relationship="household_member",
                    markers=[marker("m1", "da_high_risk", "P2", set_days=-2)],
                ),
            ]
        ),
        [],
    ),
    (
        "a marker on the household itself",
        caller(
            households=[
                HouseholdFacts(
                    id=H1,
                    markers=[marker("m9", "da_high_risk", H1, subject_type="household")],
                )
            ]
        ),
        ["household_risk"],
    ),
    # -- officer safety and orders raise their own alerts, never household risk --
    (
        "a firearms marker on the household",
        caller(
            households=[
                HouseholdFacts(
                    id=H1,
                    markers=[marker("m9", "firearms", H1, subject_type="household")],
                )
            ]
        ),
        ["officer_safety"],
    ),
    # -- the caller's own markers --
    (
        "caller's own active marker",
        caller(
            persons=[
                PersonFacts(
                    id=P1,
                    relationship="caller",
                    markers=[marker("m2", "mental_health", P1, expires_in=30)],
                )
            ]
        ),
        ["vulnerability_marker"],
    ),
    # -- withheld / unavailable numbers --
    ("withheld number", caller(presentation="withheld"), ["withheld_number"]),
    ("unavailable number", caller(presentation="unavailable"), ["withheld_number"]),
    ("a new number with no history", caller(), []),
    # -- DA escalation: >= 2 earlier DA incidents in 12 months (this call the third) --
    (
        "three DA incidents this year",
        caller(
            number_contacts=[
                contact("d1", 3, domestic_abuse=True),
                contact("d2", 60, domestic_abuse=True),
                contact("d3", 300, domestic_abuse=True),
            ]
        ),
        ["da_escalation"],
    ),
    (
        "one DA incident this year, the second too old",
        caller(
            number_contacts=[
                contact("d1", 3, domestic_abuse=True),
                contact("d3", 400, domestic_abuse=True),
            ]
        ),
        [],
    ),
]


def case(name: str) -> CallerFacts:
    return next(facts for named, facts, _ in CASES if named == name)


@pytest.mark.parametrize(("name", "facts", "expected"), CASES, ids=[c[0] for c in CASES])
def test_default_pack(name: str, facts: CallerFacts, expected: list[str]) -> None:
    assert kinds(evaluate(SHIPPED, facts)) == sorted(expected)


def test_repeat_victim_alert_carries_evidence_reasons_and_rule() -> None:
    facts = caller(
        number_contacts=[
            contact("c-old", 400, victim=True),
            contact("c1", 200, victim=True),
            contact("c2", 10, victim=True),
            contact("c3", 20),
        ]
    )
    alert = one(evaluate(SHIPPED, facts), "repeat_victim")
    assert alert.rule == f"repeat_victim@{VERSION}"
    assert alert.severity == "high"  # recency score 0.93 + 0.21 = 1.1, under 1.5
    assert alert.evidence == ["c2", "c1"]  # most recent first, only those that count
    assert alert.title == (
        "Repeat victim: this call would be incident 3 in 365 days (recency score 1.1)"
    )
    assert alert.reasons == [
        "2 victim contacts in the last 365 days for this number (threshold >= 1); recency "
        "score 1.1 (each incident counts 1 today, half as much after 90 days)"
    ]
    assert alert.suggested_grade == "priority"


def test_household_risk_names_the_relationship_and_tags_the_marker() -> None:
    facts = CASES[9][1]
    alert = one(evaluate(SHIPPED, facts), "household_risk")
    assert alert.title == (
        "Household risk: the caller's partner has an active domestic abuse high-risk marker"
    )
    assert alert.evidence == ["m1"]
    assert alert.tags == ["da_high_risk"]
    assert alert.category == "safeguarding"
    assert "P2" not in alert.reasons[0] and "partner" in alert.reasons[0]


def test_household_member_without_known_relation_is_named_as_such() -> None:
    facts = caller(
        persons=[
            PersonFacts(id=P1, relationship="caller"),
            PersonFacts(
                id="P2",
                relationship="household_member",
                markers=[marker("m1", "cse_risk", "P2")],
            ),
        ]
    )
    alert = one(evaluate(SHIPPED, facts), "household_risk")
    assert alert.title.startswith("Household risk: a household member has an active child")


def test_withheld_prompts_for_number_and_address() -> None:
    alert = one(evaluate(SHIPPED, caller(presentation="withheld")), "withheld_number")
    assert "number and address" in alert.title
    assert alert.evidence == []
    assert alert.rule == f"withheld_number@{VERSION}"


def test_da_escalation_prompts_marac() -> None:
    facts = case("three DA incidents this year")
    alert = one(evaluate(SHIPPED, facts), "da_escalation")
    assert "MARAC" in alert.title
    assert set(alert.evidence) == {"d1", "d2", "d3"}
    assert "domestic_abuse" in alert.tags


def test_alerts_come_most_severe_first() -> None:
    facts = caller(
        number_contacts=[contact("c1", 1), contact("c2", 2), contact("c3", 3)],
        persons=[
            PersonFacts(
                id=P1,
                relationship="caller",
                markers=[marker("m1", "adult_at_risk", P1)],
            )
        ],
    )
    assert [a.kind for a in evaluate(SHIPPED, facts)] == ["vulnerability_marker", "repeat_caller"]


# -- thresholds are configuration ---------------------------------------------------------


ONE_VICTIM_CONTACT = caller(number_contacts=[contact("c1", 100, victim=True)])


@pytest.mark.parametrize(
    ("edit", "raised"),
    [
        (None, True),
        (("value: 1\n", "value: 2\n"), False),  # a force wanting 2 earlier victim contacts
        (("within_days: 365", "within_days: 60"), False),
        (("per: [person, number_if_no_person]", "per: [person]"), False),
        (("categories: [crime, asb, unknown]", "categories: [crime, asb]"), False),
    ],
    ids=["default", "threshold-2", "window-60-days", "not-per-number", "typed-only"],
)  # fmt: skip
def test_edited_pack_changes_the_outcome(
    tmp_path: Path, edit: tuple[str, str] | None, raised: bool
) -> None:
    text = shipped_text("alerts.yaml")
    if edit is not None:
        old, new = edit
        start = text.index("- id: repeat_victim")
        end = text.index("- id: repeat_caller")
        block = text[start:end]
        assert old in block
        text = text[:start] + block.replace(old, new, 1) + text[end:]
        text = text.replace(f'version: "{VERSION}"', 'version: "force-2"')
    rules = with_override(tmp_path, "alerts.yaml", text)
    alerts = evaluate(rules, ONE_VICTIM_CONTACT)
    assert ("repeat_victim" in kinds(alerts)) is raised
    if edit is None:
        assert one(alerts, "repeat_victim").rule == f"repeat_victim@{VERSION}"


def test_disabled_rule_raises_nothing(tmp_path: Path) -> None:
    text = shipped_text("alerts.yaml").replace(
        "  - id: repeat_victim\n", "  - id: repeat_victim\n    enabled: false\n"
    )
    rules = with_override(tmp_path, "alerts.yaml", text)
    assert evaluate(rules, ONE_VICTIM_CONTACT) == []


# -- combinators, incident-type filters, templates -----------------------------------------

COMBINED = """
pack: force-extra
version: "7"
kind: alerts
rules:
  - id: burglary_repeat_no_marker
    alert: repeat_burglary
    severity: low
    title: "{count} burglaries at {subject} in {within_days} days"
    reason: "{subject}: {count} burglaries (>= {threshold})"
    when:
      kind: all
      of:
        - kind: presentation
          any_of: [allowed]
        - kind: not
          condition: {kind: markers, of: [caller, household_member, household]}
        - kind: any
          of:
            - {kind: count, fact: contacts, per: [household], within_days: 90, value: 2,
               incident_types: [burglary]}
            - {kind: count, fact: contacts, per: [number], within_days: 90, value: 5}
"""


def test_combinators_and_incident_type_filter(tmp_path: Path) -> None:
    rules = with_override(tmp_path, "extra.yaml", COMBINED)
    burgled = HouseholdFacts(
        id=H1,
        contacts=[
            contact("b1", 5, incident_type="burglary"),
            contact("b2", 80, incident_type="burglary"),
            contact("x1", 6, incident_type="theft"),
        ],
    )
    alert = one(evaluate(rules, caller(households=[burgled])), "repeat_burglary")
    assert alert.rule == "burglary_repeat_no_marker@7"
    assert alert.title == "2 burglaries at the caller's household in 90 days"
    assert alert.reasons == ["the caller's household: 2 burglaries (>= 2)"]
    assert alert.evidence == ["b1", "b2"]

    # `not`: a marker anywhere in the household stops it.
    marked = burgled.model_copy(
        update={"markers": [marker("m1", "adult_at_risk", H1, subject_type="household")]}
    )
    assert "repeat_burglary" not in kinds(evaluate(rules, caller(households=[marked])))
    # `all`: a withheld number stops it.
    hidden = caller(households=[burgled], presentation="withheld")
    assert "repeat_burglary" not in kinds(evaluate(rules, hidden))
    # the filter: theft contacts do not count as burglaries.
    thefts = HouseholdFacts(
        id=H1,
        contacts=[contact("t1", 5, incident_type="theft"), contact("t2", 9, incident_type="theft")],
    )
    assert "repeat_burglary" not in kinds(evaluate(rules, caller(households=[thefts])))
    # the shipped packs are still loaded alongside the force's extra pack
    assert any(r.rule.id == "repeat_victim" for r in rules.alert_rules)


def test_evaluation_is_pure_and_repeatable() -> None:
    facts = CASES[9][1]
    before = facts.model_dump()
    first = evaluate(SHIPPED, facts)
    assert evaluate(SHIPPED, facts) == first
    assert facts.model_dump() == before


def test_horizon_covers_the_longest_window() -> None:
    assert SHIPPED.horizon_days == 365
