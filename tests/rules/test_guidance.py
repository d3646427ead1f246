"""THRIVE+ prompts and advice selection from the shipped packs (and an edited copy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.rules.engine import evaluate
from app.rules.errors import RulesError
from app.rules.facts import PersonFacts
from app.rules.guidance import (
    UnknownAdviceItem,
    UnknownIncidentType,
    advice_for,
    advice_item,
    incident_types,
    is_incident_type,
    prompts_for,
    require_advice_items,
    require_incident_type,
)
from tests.rules.support import SHIPPED, VERSION, caller, marker, shipped_text, with_override

ELEMENTS = [
    "threat", "harm", "risk", "investigation", "vulnerability", "engagement", "prevention",
    "preservation",
]  # fmt: skip
DA_PROMPTS = {
    "da.suspect_present", "da.call_drops", "child.seen_heard", "da.history_marac",
    "da.weapons", "da.substances", "da.bail_orders", "da.verbatim", "da.risk_tool",
}  # fmt: skip


def ids(items: list) -> list[str]:  # type: ignore[type-arg]
    return [i.id for i in items]


def test_general_prompts_cover_every_element_in_template_order() -> None:
    prompts = prompts_for(SHIPPED, None)
    # Prevention and preservation are recorded by the advice ticks, not by a prompt that
    # repeats them (issue 14).
    assert {p.element for p in prompts} == set(ELEMENTS) - {"prevention", "preservation"}
    shown = [p for p in prompts if not p.folded]
    folded = [p for p in prompts if p.folded]
    assert prompts == shown + folded  # the must-ask ones first
    for part in (shown, folded):
        order = [(p.priority, ELEMENTS.index(p.element)) for p in part]
        assert order == sorted(order)
    assert {p.priority for p in shown} <= {1, 2} and {p.priority for p in folded} == {3}
    assert all(p.reason == "general" for p in prompts)
    assert not DA_PROMPTS & set(ids(prompts))
    threat = next(p for p in prompts if p.id == "threat.where_who")
    assert threat.element_name == "Threat" and threat.rule == f"threat.where_who@{VERSION}"
    assert prompts[0] == threat and threat.priority == 1 and threat.source


def test_burglary_gives_preservation_and_prevention_advice() -> None:
    advice = advice_for(SHIPPED, "burglary")
    preservation = [a for a in advice if a.kind == "preservation"]
    prevention = [a for a in advice if a.kind == "prevention"]
    assert preservation and prevention
    assert advice.index(preservation[-1]) < advice.index(prevention[0])  # preservation first
    entry = advice_item(SHIPPED, "burglary.dont_touch_entry")
    assert entry is not None and entry in preservation
    assert "point of entry" in entry.text and entry.incident_type == "burglary"
    assert "burglary.lock_up" in ids(prevention)
    assert all(a.rule.endswith(f"@{VERSION}") for a in advice)


def test_burglary_then_domestic_abuse_prompts() -> None:
    burglary = prompts_for(SHIPPED, "burglary")
    assert "burglary.offender_present" in ids(burglary)
    assert not DA_PROMPTS & set(ids(burglary))
    da = prompts_for(SHIPPED, "domestic_abuse")
    assert DA_PROMPTS <= set(ids(da))
    assert "burglary.offender_present" not in ids(da)
    assert {p.reason for p in da if p.id in DA_PROMPTS} == {"incident_type"}
    assert (
        set(ids(advice_for(SHIPPED, "domestic_abuse"))) & set(ids(advice_for(SHIPPED, "burglary")))
        == set()
    )


@pytest.mark.parametrize(
    ("alerts", "added"),
    [
        (["repeat_victim"], {"alert.repeat_victim"}),
        (["household_risk"], {"alert.household"}),
        (["withheld_number"], {"alert.withheld"}),
        (["da_escalation"], DA_PROMPTS | {"alert.marac"}),
        (["da_high_risk"], DA_PROMPTS),
        (["repeat_caller", "repeat_victim"], {"alert.repeat_caller", "alert.repeat_victim"}),
        ([], set()),
    ],
)
def test_prompts_per_alert_kind(alerts: list[str], added: set[str]) -> None:
    general = set(ids(prompts_for(SHIPPED, None)))
    with_alerts = prompts_for(SHIPPED, None, alerts)
    assert set(ids(with_alerts)) - general == added
    assert {p.reason for p in with_alerts if p.id in added} <= {"alert"}


def test_household_da_alert_adds_da_questions_through_its_marker_tag() -> None:
    facts = caller(
        persons=[
            PersonFacts(id="P1", relationship="caller"),
            PersonFacts(
                id="P2",
                relationship="household_member",
                markers=[marker("m1", "da_high_risk", "P2")],
            ),
        ]
    )
    alerts = evaluate(SHIPPED, facts)
    assert [a.kind for a in alerts] == ["household_risk"]
    selected = set(ids(prompts_for(SHIPPED, "burglary", alerts)))
    assert DA_PROMPTS | {"alert.household", "burglary.offender_present"} <= selected
    # a household marker of another kind does not bring the DA questions
    other = caller(
        persons=[
            PersonFacts(
                id="P2",
                relationship="household_member",
                markers=[marker("m1", "mental_health", "P2")],
            ),
        ]
    )
    assert not DA_PROMPTS & set(ids(prompts_for(SHIPPED, "burglary", evaluate(SHIPPED, other))))


def test_each_prompt_once_even_when_selected_twice() -> None:
    prompts = prompts_for(SHIPPED, "domestic_abuse", ["da_high_risk", "da_escalation"])
    assert len(ids(prompts)) == len(set(ids(prompts)))


def test_incident_type_catalogue_and_unknown_types() -> None:
    catalogue = incident_types(SHIPPED)
    assert [t.id for t in catalogue][:3] == ["burglary", "assault", "sexual_offence"]
    assert is_incident_type(SHIPPED, "fraud") and not is_incident_type(SHIPPED, "Burglary")
    assert require_incident_type(SHIPPED, "asb").name == "Anti-social behaviour"
    with pytest.raises(UnknownIncidentType) as caught:
        require_incident_type(SHIPPED, "alien_abduction")
    assert isinstance(caught.value, RulesError) and caught.value.status == 422
    assert caught.value.code == "unknown_incident_type"
    assert "burglary" in caught.value.details["known"]
    assert "alien_abduction" not in caught.value.message  # input is not echoed
    assert advice_for(SHIPPED, "alien_abduction") == []


def test_advice_item_lookup() -> None:
    assert advice_item(SHIPPED, "fraud.contact_bank") is not None
    assert advice_item(SHIPPED, "nope") is None
    items = require_advice_items(SHIPPED, ["fraud.contact_bank", "stalking.diary"])
    assert [i.kind for i in items] == ["prevention", "preservation"]
    with pytest.raises(UnknownAdviceItem) as caught:
        require_advice_items(SHIPPED, ["fraud.contact_bank", "made.up", "also.made.up"])
    assert caught.value.status == 422
    assert caught.value.details == {"unknown": ["also.made.up", "made.up"]}


def test_edited_prompt_pack_changes_prompts(tmp_path: Path) -> None:
    text = shipped_text("thrive.yaml").replace(
        "Confirm the repeat-victim check with the caller", "ASK: repeat-victim check"
    )
    rules = with_override(tmp_path, "thrive.yaml", text.replace(VERSION, "2026.12.0"))
    [prompt] = [p for p in prompts_for(rules, None, ["repeat_victim"]) if p.reason == "alert"]
    assert prompt.text.startswith("ASK: repeat-victim check")
    assert prompt.rule == "alert.repeat_victim@2026.12.0"
