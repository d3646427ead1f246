"""Issue 13, acceptance 6: every default alert's title, reasons and evidence lines, rendered
from fixture data, hold no internal id (person, household, contact or marker ids).

The rules are taken from the loaded default packs, so a new default rule is covered without
editing this test; if it does not fire on the fixture the test fails and says which, so the
fixture grows with it. Ids stay in the alerts' machine field (`evidence`)."""

from __future__ import annotations

import re

import pytest

from app.rules.engine import evaluate
from app.rules.facts import (
    CallerFacts,
    CallFacts,
    ContactRef,
    HouseholdFacts,
    MarkerRef,
    NearbyIncident,
    PersonFacts,
)
from tests.rules.support import NOW, SHIPPED, ago, caller

# Ids shaped like the demo's and a force's (DSP2B, DSH2, ...): anything matching is a leak.
ID_SHAPE = re.compile(r"\b(?:PX|HX|CX|MX)\d+[A-Z]?\b")
OUTCOMES = ("advice_given", "officer_attended", "crime_recorded", None)


def _contacts(prefix: str, person: str | None, household: str | None) -> list[ContactRef]:
    """Contacts of every incident type the packs know (and one of no type), at ages inside
    every default window, as victim and not, DA and not."""
    types: list[str | None] = [*sorted(SHIPPED.incident_names), "asb", None]
    refs = []
    n = 0
    for incident in types:
        for days in (1, 8, 20, 90, 200, 330):
            n += 1
            refs.append(
                ContactRef(
                    id=f"CX{prefix}{n}",
                    occurred_at=ago(days),
                    incident_type=incident,
                    victim=n % 2 == 0,
                    domestic_abuse=incident == "domestic_abuse" or n % 5 == 0,
                    person_id=person,
                    household_id=household,
                    outcome=OUTCOMES[n % len(OUTCOMES)],
                    call_id=n if n % 7 == 0 else None,
                )
            )
    return sorted(refs, key=lambda c: c.occurred_at, reverse=True)


def _markers(prefix: str, subject: str, subject_type: str) -> list[MarkerRef]:
    """One active marker of every kind in the catalogue (and one it does not list)."""
    kinds = [*SHIPPED.marker_labels, "force_local_kind"]
    return [
        MarkerRef(
            id=f"MX{prefix}{i}",
            kind=kind,
            subject_type=subject_type,  # type: ignore[arg-type]
            subject_id=subject,
            set_at=ago(30),
            expires_at=NOW.replace(year=NOW.year + 1) if i % 2 else None,
            set_by=f"PX{i}",
        )
        for i, kind in enumerate(kinds)
    ]


def _fixture(named: bool) -> CallerFacts:
    def person(pid: str, role: str, relation: str | None, born: str) -> PersonFacts:
        return PersonFacts(
            id=pid,
            name=f"Pat Example {pid[-1]}" if named else None,
            date_of_birth=born if named else None,
            relationship=role,  # type: ignore[arg-type]
            relation=relation,
            household_ids=["HX1"],
            contacts=_contacts(pid, pid, "HX1"),
            markers=_markers(pid, pid, "person"),
        )

    facts = caller(
        number_contacts=_contacts("N", "PX1", "HX1"),
        persons=[
            person("PX1", "caller", None, "1985-06-01"),
            person("PX2", "household_member", "partner", "1984-01-31"),
            person("PX3", "household_member", "ex_partner", "1990-12-25"),
            person("PX4", "household_member", None, "2015-03-03"),
        ],
        households=[
            HouseholdFacts(
                id=f"HX{h}",
                uprn="100000000001",
                address="1 Example Row, Exampletown" if named and h == 1 else None,
                member_ids=["PX1", "PX2", "PX3", "PX4"],
                contacts=_contacts(f"H{h}", None, f"HX{h}"),
                markers=_markers(f"H{h}", f"HX{h}", "household"),
            )
            for h in (1, 2)
        ],
    )
    # A burglary next door (near repeat): its contact id is an id too.
    nearby = NearbyIncident(
        id="CXN1",
        occurred_at=ago(3),
        incident_type="burglary",
        distance_m=120.0,
        near_household_id="HX1",
    )
    return facts.model_copy(update={"nearby": [nearby]})


FIXTURES = {
    "named, with dates of birth and addresses": _fixture(named=True),
    "no names, dates of birth or addresses": _fixture(named=False),
    "withheld number": caller(presentation="withheld"),
    "unavailable number": caller(presentation="unavailable"),
    # Rules that read what the call itself is (MARAC repeat, repeat missing) hold once the
    # handler has set its type or qualifiers: the same history, the call now DA.
    "named, the call now domestic abuse": _fixture(named=True).model_copy(
        update={"call": CallFacts(incident_type="domestic_abuse", qualifiers=["domestic_abuse"])}
    ),
}


def _ids(facts: CallerFacts) -> set[str]:
    found = {c.id for c in facts.number_contacts} | {n.id for n in facts.nearby}
    for subject in (*facts.persons, *facts.households):
        found.add(subject.id)
        found.update(c.id for c in subject.contacts)
        found.update(m.id for m in subject.markers)
    return found


def test_every_default_rule_is_rendered_by_the_fixtures() -> None:
    raised = {a.rule.split("@")[0] for facts in FIXTURES.values() for a in evaluate(SHIPPED, facts)}
    rules = {ref.rule.id for ref in SHIPPED.alert_rules if ref.rule.enabled}
    missing = sorted(rules - raised)
    assert not missing, f"extend the fixtures so these default rules fire: {missing}"


@pytest.mark.parametrize("name", list(FIXTURES))
def test_no_internal_id_in_what_a_handler_reads(name: str) -> None:
    facts = FIXTURES[name]
    ids = _ids(facts)
    alerts = evaluate(SHIPPED, facts)
    assert alerts
    for alert in alerts:
        words = [alert.title, *alert.reasons, *alert.evidence_lines]
        leaks = [w for w in words if ID_SHAPE.search(w) or any(i in w for i in ids)]
        assert not leaks, (alert.rule, leaks)
        assert "?" not in alert.title, alert.title  # every placeholder had a value
        # The ids are still there for machines (the screen's detail, the audit trail).
        assert set(alert.evidence) <= ids
        if alert.evidence:
            assert alert.evidence_lines, alert.rule


def test_officer_safety_comes_first_and_is_never_vulnerability() -> None:
    alerts = evaluate(SHIPPED, FIXTURES["named, with dates of birth and addresses"])
    assert alerts[0].kind == "officer_safety" and alerts[0].category == "officer_safety"
    officer_kinds = {k for k, c in SHIPPED.marker_categories.items() if c == "officer_safety"}
    assert officer_kinds >= {"firearms", "weapons", "violent_to_staff", "premises_warning"}
    assert set(alerts[0].tags) >= officer_kinds
    for alert in alerts[1:]:
        assert alert.category != "officer_safety"
        assert not set(alert.tags) & officer_kinds, alert.kind
    for alert in alerts:
        if alert.category == "officer_safety":
            assert "vulnerab" not in (alert.title + " ".join(alert.reasons)).lower()


# The kinds issue 13 names, each in its category (a force may add its own).
CATEGORIES = {
    "officer_safety": {"firearms", "weapons", "violent_to_staff", "premises_warning"},
    "safeguarding": {
        "da_high_risk", "child_protection_plan", "looked_after_child", "cse_risk",
        "missing_person", "adult_at_risk", "mental_health",
    },
    "orders": {
        "bail_conditions", "non_molestation_order", "dvpo", "stalking_protection_order",
        "restraining_order", "registered_sex_offender",
    },
    "needs": {"interpreter", "deaf", "text_relay", "learning_disability"},
    "history": {"previous_missing", "marac"},
}  # fmt: skip


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_marker_catalogue_by_category(category: str) -> None:
    listed = {k for k, c in SHIPPED.marker_categories.items() if c == category}
    assert listed >= CATEGORIES[category]


@pytest.mark.parametrize(
    ("kind", "holder", "alert", "category"),
    [
        ("weapons", "caller", "officer_safety", "officer_safety"),
        ("premises_warning", "household", "officer_safety", "officer_safety"),
        ("non_molestation_order", "member", "orders", "orders"),
        ("bail_conditions", "caller", "orders", "orders"),
        ("child_protection_plan", "member", "household_risk", "safeguarding"),
        ("interpreter", "caller", "vulnerability_marker", "needs"),
        ("marac", "household", "household_risk", "history"),
    ],
)
def test_each_category_raises_its_alert_with_its_category(
    kind: str, holder: str, alert: str, category: str
) -> None:
    mark = [MarkerRef(id="MX1", kind=kind, subject_type="household" if holder == "household"
                      else "person", subject_id="X", set_at=ago(3))]  # fmt: skip
    facts = caller(
        persons=[
            PersonFacts(id="PX1", name="Sam Example", date_of_birth="1985-06-01",
                        relationship="caller", markers=mark if holder == "caller" else []),
            PersonFacts(id="PX2", name="Jo Example", date_of_birth="1985-06-01",
                        relationship="household_member", relation="partner",
                        markers=mark if holder == "member" else []),
        ],
        households=[HouseholdFacts(id="HX1", address="2 Example Mews",
                                   markers=mark if holder == "household" else [])],
    )  # fmt: skip
    raised = evaluate(SHIPPED, facts)
    assert [(a.kind, a.category) for a in raised] == [(alert, category)]
    if holder == "member":
        label = SHIPPED.marker_labels[kind]
        assert raised[0].reasons == [f"Jo Example (partner, 41) has an active {label} marker"]


def test_evidence_is_grouped_by_incident_type_and_outcome_not_repeated() -> None:
    same = [
        ContactRef(id="CX1", occurred_at=ago(2), incident_type="asb", outcome="advice_given"),
        ContactRef(id="CX2", occurred_at=ago(9), incident_type="asb", outcome="advice_given"),
        ContactRef(id="CX3", occurred_at=ago(15), incident_type="asb", outcome="officer_attended"),
        ContactRef(id="CX4", occurred_at=ago(27), incident_type="burglary"),
    ]
    facts = caller(
        number_contacts=same,
        persons=[PersonFacts(id="PX1", name="Chris Example", date_of_birth="1985-06-01",
                             relationship="caller", contacts=same)],
        households=[HouseholdFacts(id="HX1", address="3 Example Road", contacts=same[:2])],
    )  # fmt: skip
    alert = next(a for a in evaluate(SHIPPED, facts) if a.kind == "repeat_caller")
    # Grouped by incident type, with the outcomes of each: not one line per call.
    assert alert.evidence_lines == [
        "This number: 4 contacts in 30 days: 3 anti-social behaviour, 1 burglary",
        "3 anti-social behaviour, latest 2 days ago: 2 advice given, 1 officer attended",
        "1 burglary, 27 days ago: outcome not recorded",
    ]
    assert alert.evidence == ["CX1", "CX2", "CX3", "CX4"]
    victims = [c.model_copy(update={"victim": True}) for c in same]
    facts = facts.model_copy(
        update={
            "number_contacts": victims,
            "persons": [facts.persons[0].model_copy(update={"contacts": victims})],
        }
    )
    alert = next(a for a in evaluate(SHIPPED, facts) if a.kind == "repeat_victim")
    assert alert.evidence_lines[0] == (
        # The number is not counted as well: a person is known (`number_if_no_person`).
        "Chris Example (caller, 41): 4 victim contacts in 365 days: "
        "3 anti-social behaviour, 1 burglary"
    )
    assert len(alert.evidence_lines) == 3
