"""Cue effects in the packs (issue 14 point 2): checked against the qualifier and prompt
packs at load, merged strand + cue, and prompts only a cue adds."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.rules.catalogue import describe
from app.rules.cues import detect_cues
from app.rules.guidance import prompts_for
from app.rules.loader import PackLoadError, load_paths
from tests.rules.support import SHIPPED, with_override, write

LEX = SHIPPED.lexicon
FORCE_CUES = """
pack: local-cues
version: "L1"
kind: cues
strands:
  - id: weapons
    name: Weapons mentioned
    effects: {prompts: [alert.repeat_caller]}
    cues:
      - id: local.weapons.harpoon
        phrases: ["harpoon"]
        effects: {qualifiers: [QUALIFIER], grade_floor: priority}
"""


def test_every_shipped_effect_names_what_the_packs_define() -> None:
    prompt_ids = {prompt.id for prompt, _, _ in SHIPPED.prompts}
    for info in LEX.cues:
        assert set(info.effects.qualifiers) <= set(SHIPPED.qualifiers), info.cue
        assert set(info.effects.prompts) <= prompt_ids, info.cue


def test_unknown_qualifiers_and_prompts_are_refused_with_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "local-cues.yaml",
        FORCE_CUES.replace("QUALIFIER", "armed_forces").replace(
            "alert.repeat_caller", "no.such.prompt"
        ),
    )
    with pytest.raises(PackLoadError) as caught:
        load_paths([tmp_path])
    found = {(Path(p.file).name, p.line, p.reason) for p in caught.value.problems}
    assert found == {
        ("local-cues.yaml", 7, "unknown prompt 'no.such.prompt'"),
        ("local-cues.yaml", 11, "unknown qualifier 'armed_forces'"),
    }


def test_a_force_cue_merges_its_effects_with_its_strands(tmp_path: Path) -> None:
    rules = with_override(
        tmp_path, "local-cues.yaml", FORCE_CUES.replace("QUALIFIER", "adult_at_risk")
    )
    [cue] = detect_cues(rules.lexicon, "he had a harpoon")
    # the shipped strand's effects, the force strand's, then the cue's own
    assert cue.qualifiers == ("weapons", "adult_at_risk")
    assert cue.prompts == ("weapons.what_where", "cue.officer_safety", "alert.repeat_caller")
    assert cue.grade_floor == "priority"
    # a shipped cue of the strand keeps its own floor and gains the force strand's prompt
    [knife] = detect_cues(rules.lexicon, "he has a knife")
    assert knife.grade_floor == "emergency"
    assert "alert.repeat_caller" in knife.prompts


def test_the_catalogue_lists_each_cues_effects() -> None:
    strands = {s.id: s for s in describe(SHIPPED).strands}
    cues = {c.id: c for c in strands["weapons"].cues}
    assert cues["weapons.present"].grade_floor == "emergency"
    assert cues["weapons.any"].grade_floor is None
    assert cues["weapons.any"].qualifiers_proposed == ["weapons"]


def test_cue_only_prompts_come_only_with_their_cue() -> None:
    general = {p.id for p in prompts_for(SHIPPED, "burglary")}
    assert not {p for p in general if p.startswith("cue.")}
    assert SHIPPED.cue_only_prompts >= {"cue.officer_safety", "cue.threat_to_kill"}
    added = prompts_for(SHIPPED, "burglary", added=["cue.officer_safety", "weapons.what_where"])
    reasons = {p.id: p.reason for p in added}
    assert reasons["cue.officer_safety"] == "cue"
    assert reasons["weapons.what_where"] == "cue"
    # a prompt the call has for another reason keeps that reason
    carried = prompts_for(SHIPPED, "burglary", qualifiers=["weapons"], added=["weapons.what_where"])
    assert {p.id: p.reason for p in carried}["weapons.what_where"] == "qualifier"
