"""The qualifier catalogue of the advice packs (issue 13 point 2): the shipped defaults, a
force pack adding its own hate-crime strand, and the selection that merges a qualifier's
prompts and advice with the incident type's (pure; no service)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.rules import guidance
from app.rules.errors import RulesError
from app.rules.loader import PackLoadError, load_paths
from tests.rules.support import write

MONITORED = ["race", "religion", "sexual_orientation", "disability", "transgender_identity"]


def test_the_shipped_qualifiers_and_hate_crime_strands() -> None:
    rules = load_paths([])
    assert list(rules.qualifiers) == [
        "domestic_abuse",
        "hate_crime",
        "child_involved",
        "adult_at_risk",
        "weapons",
    ]
    assert list(rules.qualifiers["hate_crime"].strands) == MONITORED
    # Every qualifier adds at least one prompt; DA and hate crime bring their incident type's
    # advice.
    for qualifier in rules.qualifiers:
        assert any(qualifier in qs for qs in rules.prompt_qualifiers.values()), qualifier
    assert rules.qualifiers["domestic_abuse"].advice_of == ("domestic_abuse",)
    assert rules.qualifiers["hate_crime"].advice_of == ("hate_crime",)


def test_a_force_pack_adds_a_strand_and_advice_to_a_shipped_qualifier(tmp_path: Path) -> None:
    write(
        tmp_path,
        "force-qualifiers.yaml",
        """\
pack: force-qualifiers
version: "force-1"
kind: advice
qualifiers:
  - id: hate_crime
    name: Hate crime
    strands:
      - {id: alternative_subculture, name: Alternative subculture}
    prevention:
      - {id: force.hate_third_party, text: "Third-party reporting centres can take a report too."}
""",
    )
    rules = load_paths([tmp_path])
    assert list(rules.qualifiers["hate_crime"].strands) == [*MONITORED, "alternative_subculture"]
    stored = guidance.check_qualifiers(
        rules, ["hate_crime"], {"hate_crime": ["alternative_subculture", "race"]}
    )
    assert stored == {"hate_crime": ["race", "alternative_subculture"]}
    advice = {a.id for a in guidance.advice_for(rules, "theft", ["hate_crime"])}
    assert {"force.hate_third_party", "hate.words_used"} <= advice


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "qualifiers:\n  - {id: q1, name: Q, advice_of: [no_such_type]}\n",
            "unknown incident type 'no_such_type'",
        ),
        (
            "qualifiers:\n  - id: hate_crime\n    name: Hate crime\n    strands:\n"
            "      - {id: race, name: Race again}\n",
            "strand 'race' is defined twice",
        ),
        (
            "qualifiers:\n  - id: q2\n    name: Q\n    prevention:\n"
            "      - {id: burglary.lock_up, text: Reused id.}\n",
            "advice id 'burglary.lock_up' is used twice",
        ),
    ],
)
def test_bad_qualifiers_are_refused_with_file_and_line(
    tmp_path: Path, text: str, reason: str
) -> None:
    write(tmp_path, "bad.yaml", 'pack: bad\nversion: "1"\nkind: advice\n' + text)
    with pytest.raises(PackLoadError) as caught:
        load_paths([tmp_path])
    found = [(Path(p.file).name, p.reason) for p in caught.value.problems]
    assert ("bad.yaml", reason) in found, found


def test_a_prompt_naming_an_unknown_qualifier_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "prompts.yaml",
        """\
pack: extra-prompts
version: "1"
kind: prompts
prompts:
  - {id: x.one, element: threat, qualifiers: [no_such_qualifier], text: "Ask."}
""",
    )
    with pytest.raises(PackLoadError) as caught:
        load_paths([tmp_path])
    assert any("unknown qualifier 'no_such_qualifier'" in p.reason for p in caught.value.problems)


def test_a_da_rape_merges_the_sexual_offence_advice_and_the_da_prompts() -> None:
    rules = load_paths([])
    prompts = guidance.prompts_for(rules, "sexual_offence", [], ["domestic_abuse"])
    reasons = {p.id: p.reason for p in prompts}
    assert reasons["da.suspect_present"] == "qualifier"
    assert reasons["sexual.first_disclosure"] == "incident_type"
    advice = guidance.advice_for(rules, "sexual_offence", ["domestic_abuse"])
    ids = [a.id for a in advice]
    assert {a.id for a in rules.advice["sexual_offence"]} <= set(ids)
    assert {a.id for a in rules.advice["domestic_abuse"]} <= set(ids)
    assert len(ids) == len(set(ids))
    kinds = [a.kind for a in advice]
    assert kinds == sorted(kinds, key=lambda k: 0 if k == "preservation" else 1)
    # Without the qualifier: none of it.
    plain = guidance.prompts_for(rules, "sexual_offence", [])
    assert "da.suspect_present" not in {p.id for p in plain}


def test_check_qualifiers_lists_every_problem() -> None:
    rules = load_paths([])
    with pytest.raises(RulesError) as caught:
        guidance.check_qualifiers(
            rules, ["nope", "weapons"], {"weapons": ["knife"], "hate_crime": ["race"]}
        )
    assert caught.value.status == 422 and caught.value.code == "invalid_qualifiers"
    assert [d["field"] for d in caught.value.details] == [
        "qualifiers",
        "qualifier_strands.weapons",
        "qualifier_strands.hate_crime",
    ]
