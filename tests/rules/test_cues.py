"""Hidden-vulnerability cues on the shipped lexicon: table-driven, negated and tricky cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app.rules.cues import detect_cues, first_of_each, tokenize
from app.rules.loader import PackLoadError, load_paths
from tests.rules.support import CUES_VERSION, SHIPPED, with_override, write

LEX = SHIPPED.lexicon

# (narrative snippet, the strands it must raise, exactly)
SNIPPETS: list[tuple[str, set[str]]] = [
    # children present
    ("the kids are upstairs", {"children_present"}),
    ("Caller says the children are asleep in the back bedroom", {"children_present"}),
    ("there's a baby in the house", {"children_present"}),
    ("her 3 year old son saw it", {"children_present"}),
    ("my daughter called me from school", {"children_present"}),
    ("no kids in the house", set()),
    ("there are no children here", set()),
    ("No children present at the address", set()),
    ("she doesn't have any kids", set()),
    # Where a child is not still says there is one (and a child not where they should be is
    # a cue itself): only words saying there are none negate it.
    ("the children are not here, they are at their nan's", {"children_present"}),
    ("no injuries but the kids are scared", {"children_present"}),
    ("I'm not sure if the kids are safe", {"children_present"}),
    ("not sure where the children are", {"children_present"}),
    ("kidney stones, in pain", set()),  # word boundaries: "kid" is not in "kidney"
    # pregnancy
    ("she is 20 weeks pregnant", {"pregnancy"}),
    ("she is expecting a baby in March", {"pregnancy"}),
    ("she's not pregnant", set()),
    # dementia / confusion
    ("dad has dementia and went out at 3am", {"dementia_confusion"}),
    ("she sounds confused and keeps repeating herself", {"dementia_confusion"}),
    ("he isn't confused, just angry", set()),
    ("mum has Alzheimer's", {"dementia_confusion"}),
    # disability
    ("he uses a wheelchair", {"disability"}),
    ("my brother is autistic and non-verbal", {"disability", "communication_needs"}),
    # carer dependence
    ("my carer comes in twice a day", {"carer_dependence"}),
    ("I don't care what he does", set()),
    ("be careful, he's outside", set()),
    ("she relies on her neighbour for shopping", {"carer_dependence"}),
    ("the care worker found her on the floor", {"carer_dependence"}),
    ("she no longer has a carer", set()),
    # controlling third party
    ("he won't let me leave the house", {"controlling_third_party"}),
    ("a man keeps answering for her", {"controlling_third_party"}),
    ("he took my phone off me", {"controlling_third_party"}),
    ("I can't talk right now", {"controlling_third_party"}),
    # caller not knowing their address
    ("I don't know my address", {"address_unknown"}),
    ("caller does not know the street name", {"address_unknown"}),
    ("I'm not sure where I am", {"address_unknown"}),
    # self-harm / suicide
    ("he said he wants to kill himself", {"self_harm_suicide"}),
    ("she has taken an overdose", {"self_harm_suicide"}),
    ("history of self-harm", {"self_harm_suicide"}),
    ("he is not suicidal", set()),
    # substance misuse
    ("partner came home drunk", {"substance_misuse"}),
    ("they were smoking crack in the flat", {"substance_misuse"}),
    ("nobody had been drinking", set()),
    # isolation
    ("she lives alone", {"isolation"}),
    ("she doesn't live alone, her son is there", set()),
    ("nobody visits him", {"isolation"}),
    # cuckooing
    ("people coming and going at all hours", {"cuckooing"}),
    ("strangers in his flat since last week", {"cuckooing"}),
    # modern slavery
    ("they took my passport", {"modern_slavery"}),
    ("working for no money at the car wash", {"modern_slavery"}),
    # DA high-risk indicators and weapons
    ("he strangled her last week", {"da_high_risk_indicators"}),
    ("he threatened to kill her if she called", {"da_high_risk_indicators"}),
    ("he has a knife", {"weapons"}),
    ("no weapons involved", set()),
    ("no knife was seen", set()),
    # mental health, self-neglect, communication
    ("she is off her medication", {"mental_health"}),
    ("he hears voices", {"mental_health"}),
    ("he has been hearing voices", {"mental_health"}),
    ("there's no food in the house", {"self_neglect"}),
    ("she doesn't speak English, needs an interpreter", {"communication_needs"}),
    # several strands in one narrative
    (
        "Caller whispering, says partner is drunk, has a knife and won't let her leave. "
        "Baby crying in the background.",
        {"substance_misuse", "weapons", "controlling_third_party", "children_present"},
    ),
    # words that are cues elsewhere, in phrases that are not (the pack's `ignore:` list)
    ("pain in his shoulder blade", set()),
    ("there is a crack in the windscreen", set()),
    ("they were smoking crack in the stairwell", {"substance_misuse"}),
    ("nail gun stolen from the van", set()),
    ("child seat taken from the car", set()),
    ("the window blinds were pulled down", set()),
    # cue words in ordinary sentences
    ("you're not allowed to park there", set()),
    ("it depends on the weather", set()),
    ("they took my phone and ran off", set()),
    ("her partner took her phone", {"controlling_third_party"}),
    ("he was wandering around the shop", set()),
    ("the bill was not paid", set()),
    ("baby choking on a grape", {"children_present"}),
    ("he choked her until she passed out", {"da_high_risk_indicators"}),
    ("she depends on him for everything", {"carer_dependence"}),
    # nothing at all
    ("", set()),
    ("Car parked across the driveway again.", set()),
]


def test_there_are_at_least_forty_snippets() -> None:
    assert len(SNIPPETS) >= 40
    assert sum(1 for _, s in SNIPPETS if not s) >= 15  # plenty of negated and tricky ones


@pytest.mark.parametrize(("text", "strands"), SNIPPETS, ids=[t[:40] for t, _ in SNIPPETS])
def test_snippet(text: str, strands: set[str]) -> None:
    assert {c.strand for c in detect_cues(LEX, text)} == strands


def test_cue_carries_words_span_and_stable_id() -> None:
    text = "Caller said: My Carer comes in the mornings."
    [cue] = detect_cues(LEX, text)
    assert cue.strand == "carer_dependence"
    assert cue.strand_name == "Dependence on a carer"
    assert cue.cue == "carer.carer"
    assert cue.words == "My Carer"
    assert text[cue.start : cue.end] == "My Carer"
    assert cue.rule == f"carer.carer@{CUES_VERSION}"


def test_span_of_a_contraction_covers_the_whole_word() -> None:
    text = "He won’t let me go out"  # a typographic apostrophe, as some keyboards type
    [cue] = detect_cues(LEX, text)
    assert cue.words == "won’t let me"


def test_longest_phrase_wins_where_phrases_overlap() -> None:
    cues = detect_cues(LEX, "she is expecting a baby")
    assert [(c.cue, c.words) for c in cues] == [("pregnancy.pregnant", "expecting a baby")]


def test_each_occurrence_is_found_and_first_of_each_dedups() -> None:
    text = "the kids were crying. later the kids hid. she is pregnant."
    cues = detect_cues(LEX, text)
    assert [c.cue for c in cues] == ["children.kids", "children.kids", "pregnancy.pregnant"]
    assert [c.start for c in first_of_each(cues)] == [4, text.index("pregnant")]
    # a call that already had the child cue only gets the new one
    assert [c.cue for c in first_of_each(cues, already={"children.kids"})] == ["pregnancy.pregnant"]


def test_negation_does_not_cross_a_clause() -> None:
    assert detect_cues(LEX, "no. the kids are upstairs")
    assert detect_cues(LEX, "no, the kids are upstairs")
    assert not detect_cues(LEX, "no kids are upstairs")


def test_tokenizer_expands_contractions_the_same_way_as_phrases() -> None:
    words, starts, ends = tokenize("I can't, he's here")
    assert words == ["i", "can", "not", "\x00", "he", "is", "here"]
    assert (starts[1], ends[2]) == (2, 7)


def test_force_lexicon_adds_its_own_strand(tmp_path: Path) -> None:
    rules = with_override(
        tmp_path,
        "local-cues.yaml",
        """
        pack: local-cues
        version: "L1"
        kind: cues
        strands:
          - id: children_present
            name: Children present
            cues:
              - id: local.children_welsh
                phrases: ["plant", "babi|babis"]
          - id: fire_risk
            name: Fire risk
            cues:
              - id: local.fire.hoard
                phrases: ["gas cylinders? <num>? in the flat|house"]
        """,
    )
    cues = detect_cues(rules.lexicon, "Mae'r plant yma. Two gas cylinders in the flat.")
    assert [(c.strand, c.cue, c.rule) for c in cues] == [
        ("children_present", "local.children_welsh", "local.children_welsh@L1"),
        ("fire_risk", "local.fire.hoard", "local.fire.hoard@L1"),
    ]
    # the shipped cues are still there
    assert detect_cues(rules.lexicon, "the kids are here")


# Strands where the words alone point at a risk a handler must assess (see cues.yaml).
HIGH_STRANDS = {
    "child_abuse",
    "child_sexual_exploitation",
    "coercive_control",
    "fear",
    "stalking",
    "forced_marriage_honour",
    "fgm",
    "sexual_violence",
    "weapons",
    "da_high_risk_indicators",
    "self_harm_suicide",
    "pregnancy",
    "controlling_third_party",
}


def test_shipped_strand_severities() -> None:
    severity = LEX.strand_severity
    assert {s for s, v in severity.items() if v == "high"} == HIGH_STRANDS
    assert {v for s, v in severity.items() if s not in HIGH_STRANDS} == {"medium"}
    assert set(severity) == {s for s, _ in LEX.strands()}
    found = {c.strand: c.severity for c in detect_cues(LEX, "She is pregnant and he has a knife")}
    assert found == {"pregnancy": "high", "weapons": "high"}
    assert [c.severity for c in detect_cues(LEX, "the kids are upstairs")] == ["medium"]


def test_force_cues_keep_or_set_their_strand_severity(tmp_path: Path) -> None:
    rules = with_override(
        tmp_path,
        "local-cues.yaml",
        """
        pack: local-cues
        version: "L1"
        kind: cues
        strands:
          - id: weapons
            name: Weapons mentioned
            cues:
              - {id: local.weapons.harpoon, phrases: ["harpoon"]}
          - id: fire_risk
            name: Fire risk
            cues:
              - {id: local.fire.petrol, phrases: ["petrol through the letterbox"]}
          - id: arson_threat
            name: Threat of arson
            severity: critical
            cues:
              - {id: local.fire.threat, phrases: ["burn the house down"]}
        """,
    )
    text = "He has a harpoon, poured petrol through the letterbox, said he'd burn the house down"
    assert [(c.strand, c.severity) for c in detect_cues(rules.lexicon, text)] == [
        ("weapons", "high"),  # left out: the shipped strand's severity stays
        ("fire_risk", "medium"),  # never said: the default
        ("arson_threat", "critical"),
    ]


def test_a_force_pack_may_not_contradict_a_strand_severity(tmp_path: Path) -> None:
    write(
        tmp_path,
        "local-cues.yaml",
        """
        pack: local-cues
        version: "L1"
        kind: cues
        strands:
          - id: weapons
            name: Weapons mentioned
            severity: low
            cues:
              - {id: local.weapons.harpoon, phrases: ["harpoon"]}
        """,
    )
    with pytest.raises(PackLoadError) as caught:
        load_paths([tmp_path])
    [problem] = caught.value.problems
    assert (Path(problem.file).name, problem.line) == ("local-cues.yaml", 7)
    assert "'weapons' has severity 'high' in" in problem.reason
    assert "cues.yaml" in problem.reason


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gives_well_formed_cues(text: str) -> None:
    for cue in detect_cues(LEX, text):
        assert 0 <= cue.start < cue.end <= len(text)
        assert text[cue.start : cue.end] == cue.words


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["the", "kids", "no", "not", "carer", "my", "care", ",", "but", "pregnant", "İ", "’s"]
        ),
        max_size=30,
    )
)
def test_cue_words_always_match_their_span(words: list[str]) -> None:
    text = " ".join(words)
    for cue in detect_cues(LEX, text):
        assert text[cue.start : cue.end] == cue.words
        assert cue.words.strip() == cue.words
