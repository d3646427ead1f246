"""The shipped advice and prompts as a control-room reader checks them (issue 14): ranked
prompts a handler can use mid-call, advice that is right and sourced, the incident types a
contact centre meets, and `rules check` linting content (sources, reused ids, duplicates)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.rules.catalogue import describe
from app.rules.cli import check
from app.rules.guidance import advice_for, prompts_for
from app.rules.lint import near, words
from app.rules.ruleset import RuleSet
from app.thrive import catalogue
from app.web.routes import _qa_labels
from tests.rules.support import SHIPPED, shipped_text, write

NEW_TYPES = [
    "concern_for_welfare", "suicide_self_harm", "child_abuse", "adult_at_risk",
    "honour_based_abuse", "modern_slavery", "child_sexual_exploitation",
]  # fmt: skip


def combinations(rules: RuleSet) -> Iterator[tuple[str | None, tuple[str, ...]]]:
    """Every incident type the packs define (and none) with every set of their qualifiers."""
    qualifiers = list(rules.qualifiers)
    for itype in [None, *rules.incident_types]:
        for size in range(len(qualifiers) + 1):
            for chosen in itertools.combinations(qualifiers, size):
                yield itype, chosen


def text_of(rules: RuleSet, item_id: str) -> str:
    return rules.advice_items[item_id].text


def prompt_text(rules: RuleSet, prompt_id: str) -> str:
    return next(p.text for p, _, _ in rules.prompts if p.id == prompt_id)


# ---- acceptance 4: at most 10 visible prompts -----------------------------------------------


def test_every_incident_type_with_any_qualifiers_shows_at_most_ten_prompts() -> None:
    assert SHIPPED.visible_limit == 10
    cases = 0
    for itype, chosen in combinations(SHIPPED):
        prompts = prompts_for(SHIPPED, itype, (), chosen)
        shown = [p for p in prompts if not p.folded]
        assert len(shown) <= 10, (itype, chosen, [p.id for p in shown])
        assert prompts[: len(shown)] == shown, (itype, chosen)  # the must-ask ones first
        # "Ask now" prompts are never folded away, whatever the qualifiers.
        urgent = {p.id for p in prompts if p.priority == 1}
        assert urgent <= {p.id for p in shown}, (itype, chosen)
        assert all(p.priority in (1, 2) for p in shown)
        assert len({p.id for p in prompts}) == len(prompts)
        if not chosen:
            # An incident type on its own shows every must-ask prompt it has.
            assert [p for p in prompts if p.priority <= 2] == shown, (itype, chosen)
        cases += 1
    assert cases == (len(SHIPPED.incident_types) + 1) * 2 ** len(SHIPPED.qualifiers)


def test_a_domestic_abuse_call_shows_a_short_list_and_folds_the_rest() -> None:
    prompts = prompts_for(SHIPPED, "domestic_abuse")
    shown = [p.id for p in prompts if not p.folded]
    assert len(prompts) < 26 and len(shown) <= 10  # 26 checkboxes on main
    assert shown[:3] == ["threat.where_who", "da.suspect_present", "harm.injuries"]
    assert {"da.weapons", "da.call_drops", "child.seen_heard"} <= set(shown)
    assert "da.substances" in {p.id for p in prompts if p.folded}


def test_the_visible_limit_is_the_packs_and_folds_the_overflow(tmp_path: Path) -> None:
    text = shipped_text("thrive.yaml").replace("visible_limit: 10", "visible_limit: 3")
    rules = _with(tmp_path, "thrive.yaml", text)
    prompts = prompts_for(rules, "burglary")
    assert [p.id for p in prompts if not p.folded] == [
        "threat.where_who", "burglary.offender_present", "harm.injuries",
    ]  # fmt: skip
    assert describe(rules).visible_limit == 3


# ---- acceptance 5: every item sourced, shown to supervisors and QA, not to handlers ----------


def test_every_advice_and_prompt_item_has_a_source() -> None:
    assert SHIPPED.advice_items and SHIPPED.prompts
    for item in SHIPPED.advice_items.values():
        assert len(item.source) > 10, item.id
    for prompt, _, _ in SHIPPED.prompts:
        assert len(prompt.source) > 10, prompt.id
    listed = describe(SHIPPED)
    assert all(p.source for p in listed.prompts)
    assert all(a.source for t in listed.incident_types for a in t.advice)
    assert all(a.source for q in listed.qualifiers for a in q.advice)


def test_the_qa_screen_reads_each_items_source() -> None:
    labels = _qa_labels(SimpleNamespace(rules=SHIPPED))  # type: ignore[arg-type]
    assert labels["advice"]["sexual.sarc"]["source"] == SHIPPED.advice_items["sexual.sarc"].source
    assert "Right Care, Right Person" in labels["prompts"]["welfare.rcrp"]["source"]


def test_the_handlers_prompts_and_advice_carry_no_source() -> None:
    prompts = catalogue.prompts(SHIPPED, "fraud", [], ["domestic_abuse"])
    advice = catalogue.advice(SHIPPED, "fraud", ["domestic_abuse"])
    assert prompts and advice
    assert all("source" not in p.model_dump() for p in prompts)
    assert all("source" not in a.model_dump() for a in advice)
    assert {"priority", "folded"} <= prompts[0].model_dump().keys()


# ---- the advice measured wrong on main -----------------------------------------------------


def test_the_tissue_is_kept_if_the_victim_wipes() -> None:
    toilet = text_of(SHIPPED, "sexual.avoid_toilet")
    assert "don't flush" in toilet and "keep the tissue" in toilet
    assert "don't wipe or keep" not in toilet


def test_sarc_and_safety_are_not_filed_as_prevention() -> None:
    sexual = advice_for(SHIPPED, "sexual_offence")
    assert SHIPPED.advice_items["sexual.sarc"].kind == "support"
    prevention = " ".join(a.text for a in sexual if a.kind == "prevention").lower()
    assert "referral centre" not in prevention and "somewhere safe" not in prevention
    assert "somewhere safe" in prompt_text(SHIPPED, "sexual.safe_now")
    assert [a.kind for a in sexual] == sorted(
        (a.kind for a in sexual), key=["preservation", "prevention", "support"].index
    )


def test_strangulation_brings_medical_help_and_the_call_back_caveat() -> None:
    da = advice_for(SHIPPED, "assault", ["domestic_abuse"])
    medical = next(a for a in da if a.id == "da.strangulation_medical")
    assert "medical" in medical.text and "no visible injury" in medical.text
    call_back = prompt_text(SHIPPED, "da.call_drops")
    assert "may alert the abuser" in call_back
    assert "strangulation" in prompt_text(SHIPPED, "assault.neck")


def test_hate_crime_rests_on_perception_and_names_the_strands() -> None:
    prompts = prompts_for(SHIPPED, "criminal_damage", (), ["hate_crime"])
    text = " ".join(p.text for p in prompts if p.id.startswith("hate."))
    assert "perception is enough" in text and "never ask the caller to justify" in text
    assert "What makes the caller believe" not in text
    for strand in SHIPPED.qualifiers["hate_crime"].strands.values():
        assert strand.lower() in text.lower()


def test_non_crime_asb_is_not_promised_victims_code_rights() -> None:
    pattern = prompt_text(SHIPPED, "asb.pattern")
    assert "Victims' Code rights come with a crime, not with ASB alone" in pattern
    assert "raises their risk and their Victims' Code rights" not in pattern
    for item in advice_for(SHIPPED, "asb"):
        assert "Victims' Code" not in item.text


def test_fraud_advice_reports_stops_contact_and_warns_of_couriers() -> None:
    fraud = {a.id: a.text for a in advice_for(SHIPPED, "fraud")}
    assert "national fraud reporting service" in fraud["fraud.report_fraud"]
    assert "Stop all contact" in fraud["fraud.stop_contact"]
    assert "different phone" in fraud["fraud.contact_bank"]
    assert "courier" in fraud["fraud.no_couriers"]
    assert "courier" in prompt_text(SHIPPED, "fraud.courier")


# ---- acceptance 5 (issue): the incident types added ---------------------------------------


@pytest.mark.parametrize("itype", NEW_TYPES)
def test_new_incident_types_have_prompts_and_advice(itype: str) -> None:
    assert itype in SHIPPED.incident_types
    assert SHIPPED.incident_types[itype].category is not None
    specific = [p for p in prompts_for(SHIPPED, itype) if p.reason == "incident_type"]
    assert len(specific) >= 2, itype
    assert any(not p.folded for p in specific), itype
    assert advice_for(SHIPPED, itype), itype


def test_missing_person_prompts_are_complete() -> None:
    texts = " ".join(p.text for p in prompts_for(SHIPPED, "missing_person")).lower()
    for needed in ("searched", "last seen", "wearing", "herbert protocol", "risk level"):
        assert needed in texts, needed


def test_new_types_are_accepted_by_the_alert_rules_and_counted_as_forces_count() -> None:
    # Abuse of a child or an adult at risk is a crime for the repeat-victim count.
    for itype in ("child_abuse", "adult_at_risk", "modern_slavery", "honour_based_abuse"):
        assert SHIPPED.incident_types[itype].category == "crime"
    assert SHIPPED.incident_types["suicide_self_harm"].category == "other"


# ---- acceptance 5 / point 7: `rules check` lints content ------------------------------------


def _with(folder: Path, name: str, text: str) -> RuleSet:
    from app.rules.loader import load_paths

    write(folder, name, text)
    return load_paths([folder])


def _check(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = check(folder)
    return code, capsys.readouterr().err.splitlines()


def _check_prompts(
    folder: Path, capsys: pytest.CaptureFixture[str], prompts: str
) -> tuple[int, list[str]]:
    """`rules check` of a force prompts pack (extra.yaml, its prompts: YAML lines from 5)."""
    write(
        folder,
        "extra.yaml",
        "pack: force-prompts\nversion: '1'\nkind: prompts\nprompts:\n" + prompts,
    )
    return _check(folder, capsys)


def test_shipped_packs_pass_the_content_checks(capsys: pytest.CaptureFixture[str]) -> None:
    from app.rules.loader import SHIPPED_DIR

    code, errors = _check(SHIPPED_DIR, capsys)
    assert (code, errors) == (0, [])


def test_rules_check_fails_on_a_pack_without_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        "extra.yaml",
        "pack: force-prompts\nversion: '1'\nkind: prompts\nprompts:\n"
        "  - {id: force.bridge, element: threat, text: Is the caller on a bridge or a roof?}\n"
        "  - id: force.dog\n    element: risk\n    text: Is there a dangerous dog at the address?\n"
        "    source: Force policy on dangerous dogs\n",
    )
    write(
        tmp_path,
        "advice.yaml",
        "pack: force-advice\nversion: '1'\nkind: advice\nincident_types:\n"
        "  - id: drone\n    name: Drone nuisance\n    prevention:\n"
        "      - {id: drone.log, text: Note the times the drone flies over.}\n",
    )
    code, errors = _check(tmp_path, capsys)
    assert code == 1
    assert f"{tmp_path / 'extra.yaml'}:5: prompt 'force.bridge' has no source" in "\n".join(errors)
    assert any(
        e.startswith(f"{tmp_path / 'advice.yaml'}:8: advice item 'drone.log' has no source")
        for e in errors
    )
    assert not any("force.dog" in e for e in errors)
    assert errors[-1] == "2 problem(s); the service would load these packs, but fix them first"


@pytest.mark.parametrize(
    ("prompts", "expected"),
    [
        pytest.param(
            "  - id: force.threat\n    element: threat\n"
            "    text: Where is the threat now, who could be harmed, and is the suspect there?\n"
            "    source: Force call-handling policy\n"
            "  - id: force.bank\n    element: harm\n"
            "    text: Contact your bank at once on the number on your card,"
            " from a different phone.\n"
            "    source: Force fraud policy\n",
            [
                "extra.yaml:5: prompt 'force.threat' nearly repeats prompt 'threat.where_who'",
                "extra.yaml:9: prompt 'force.bank' repeats advice item 'fraud.contact_bank'",
            ],
            id="near duplicates of a prompt and of an advice item, across packs",
        ),
        pytest.param(
            # A prompt given an advice item's id: "answered" and "given" would point at two things.
            "  - {id: burglary.lock_up, element: risk, text: Has a locksmith been called out?,"
            " source: Force policy}\n",
            ["extra.yaml:5: id 'burglary.lock_up' is also the id of advice item at "],
            id="an id reused across kinds",
        ),
    ],
)
def test_rules_check_fails_on_near_duplicates_and_reused_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prompts: str, expected: list[str]
) -> None:
    code, errors = _check_prompts(tmp_path, capsys, prompts)
    assert code == 1
    assert len(errors) == len(expected) + 1
    for error, start in zip(errors, expected, strict=False):
        assert error.startswith(f"{tmp_path}/{start}"), error


def test_rules_check_refuses_an_id_used_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same id twice within prompts is refused outright (nothing would load).
    code, errors = _check_prompts(
        tmp_path,
        capsys,
        "  - {id: harm.injuries, element: harm, text: Is the caller hurt?, source: Force policy}\n",
    )
    assert code == 1
    assert "prompt id 'harm.injuries' is used twice" in errors[0]
    assert errors[-1].endswith("nothing would be loaded")


def test_rules_check_fails_when_ask_now_prompts_outgrow_the_visible_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = shipped_text("thrive.yaml").replace("visible_limit: 10", "visible_limit: 2")
    write(tmp_path, "thrive.yaml", text)
    code, errors = _check(tmp_path, capsys)
    assert code == 1
    assert any("priority-1 prompts for incident type burglary" in e for e in errors)


def test_near_duplicates_are_content_words_not_wording() -> None:
    a = words("Are there children or other dependants in the household?")
    assert near(a, words("Are there any children or other dependants in the households?"))
    assert not near(a, words("Has anyone been drinking or taking drugs?"))
    assert not near(words("Is anyone injured?"), words("Is anyone missing?"))
