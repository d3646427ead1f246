"""Pack validation: every problem refused with its file, line and reason; overrides by id."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.rules.loader import SHIPPED_DIR, PackLoadError, load_paths
from tests.rules.support import SHIPPED, shipped_text, write

ALERTS_HEAD = """\
pack: force-alerts
version: "1"
kind: alerts
markers:
  - {id: da_high_risk_local, label: local DA, category: safeguarding}
rules:
"""


def problems(folder: Path) -> list[tuple[str, int, str]]:
    with pytest.raises(PackLoadError) as caught:
        load_paths([folder])
    return [(Path(p.file).name, p.line, p.reason) for p in caught.value.problems]


# (name, file text, expected line, words the reason must contain)
BAD: list[tuple[str, str, int, list[str]]] = [
    (
        "unknown key in a rule",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    title: t
    colour: red
    when: {kind: presentation, any_of: [withheld]}
""",
        11,
        ["unknown key", "colour"],
    ),
    (
        "unknown fact",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    title: t
    when:
      kind: count
      fact: arrests
      per: [number]
      within_days: 30
      value: 1
""",
        13,
        ["fact", "arrests"[:0] + "victim_contacts"],
    ),
    (
        "unknown operator",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    title: t
    when:
      kind: count
      fact: contacts
      per: [number]
      within_days: 30
      op: "=~"
      value: 1
""",
        16,
        ["op", ">="],
    ),
    (
        "unknown condition kind",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    title: t
    when:
      kind: python
      code: os.system('x')
""",
        12,
        ["unknown kind", "python"],
    ),
    (
        "unknown subject",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    title: t
    when: {kind: count, fact: contacts, per: [street], within_days: 3, value: 1}
""",
        11,
        ["per", "street"[:0] + "household"],
    ),
    (
        "missing key",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    title: t
    when: {kind: presentation, any_of: [withheld]}
""",
        7,
        ["missing key", "severity"],
    ),
    (
        "marker without a category",
        """\
pack: force-alerts
version: "1"
kind: alerts
markers:
  - {id: local, label: local}
""",
        5,
        ["missing key", "category"],
    ),
    (
        "unknown marker category",
        """\
pack: force-alerts
version: "1"
kind: alerts
markers:
  - {id: local, label: local, category: vulnerability}
""",
        5,
        ["category"],
    ),
    (
        "unknown category in a markers condition",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    title: t
    when: {kind: markers, of: [caller], categories: [vulnerability]}
""",
        11,
        ["unknown value", "officer_safety"],
    ),
    (
        "window is not a number",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    title: t
    when:
      kind: count
      fact: contacts
      per: [number]
      within_days: a year
      value: 1
""",
        15,
        ["within_days", "integer"],
    ),
    (
        "unknown placeholder in a title",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    title: "{name} called again"
    when: {kind: count, fact: contacts, per: [number], within_days: 3, value: 1}
""",
        10,
        ["unknown placeholder {name}"],
    ),
    (
        "attribute access in a template",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    title: "{count.__class__}"
    when: {kind: count, fact: contacts, per: [number], within_days: 3, value: 1}
""",
        10,
        ["bad placeholder"],
    ),
    (
        "unknown marker kind",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    title: t
    when:
      kind: markers
      of: [caller]
      kinds: [da_high_risk_local, da_hihg_risk]
""",
        14,
        ["unknown marker kind", "da_hihg_risk"],
    ),
    (
        "duplicate key",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: high
    severity: low
    title: t
    when: {kind: presentation, any_of: [withheld]}
""",
        10,
        ["duplicate key", "severity"],
    ),
    (
        "not YAML",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: [x
    severity: high
""",
        9,
        ["not valid YAML"],
    ),
    (
        "YAML aliases",
        "pack: p\nversion: '1'\nkind: alerts\nmarkers:\n  - &m {id: a, label: A}\n  - *m\n",
        6,
        ["aliases"],
    ),
    (
        "version YAML would read as a float",
        "pack: p\nversion: 1.10\nkind: alerts\n",
        2,
        ["quote the version"],
    ),
    (
        "unknown pack kind",
        "pack: p\nversion: '1'\nkind: scripts\n",
        3,
        ["unknown kind", "scripts"],
    ),
    (
        "prompt on an unknown element",
        """\
pack: force-prompts
version: "1"
kind: prompts
prompts:
  - {id: x.one, element: threat, text: fine}
  - {id: x.two, element: intelligence, text: THRIIVES needs the element declared first}
""",
        6,
        ["unknown element", "intelligence"],
    ),
    (
        "prompt for an unknown incident type",
        """\
pack: force-prompts
version: "1"
kind: prompts
prompts:
  - id: x.one
    element: threat
    text: fine
    incident_types: [burglary, burglery]
""",
        8,
        ["unknown incident type", "burglery"],
    ),
    (
        "prompt for an unknown alert",
        """\
pack: force-prompts
version: "1"
kind: prompts
prompts:
  - id: x.one
    element: threat
    text: fine
    alerts:
      - repeat_victim
      - repeat_victm
""",
        10,
        ["unknown alert", "repeat_victm"],
    ),
    (
        "prompt id used twice (one of them shipped)",
        """\
pack: force-prompts
version: "1"
kind: prompts
prompts:
  - {id: threat.where_who, element: threat, text: again}
""",
        5,
        ["used twice", "threat.where_who"],
    ),
    (
        "advice id used twice",
        """\
pack: force-advice
version: "1"
kind: advice
incident_types:
  - id: road_collision
    name: Road collision
    preservation:
      - {id: rtc.photos, text: Photograph the scene if it is safe.}
    prevention:
      - {id: burglary.lock_up, text: reused id}
""",
        10,
        ["advice id", "burglary.lock_up"],
    ),
    (
        "advice item without text",
        """\
pack: force-advice
version: "1"
kind: advice
incident_types:
  - id: road_collision
    name: Road collision
    preservation:
      - id: rtc.photos
""",
        8,
        ["missing key", "text"],
    ),
    (
        "cue phrase already used by another cue",
        """\
pack: force-cues
version: "1"
kind: cues
strands:
  - id: local
    name: Local
    cues:
      - id: local.one
        phrases: ["zebra crossing", "my carer"]
""",
        9,
        ["already a phrase of cue", "carer.carer"],
    ),
    (
        "cue phrase that is not words",
        """\
pack: force-cues
version: "1"
kind: cues
strands:
  - id: local
    name: Local
    cues:
      - id: local.one
        phrases:
          - "fine phrase"
          - "?!"
""",
        11,
        ["not a word"],
    ),
    (
        "ignored phrase that is a cue phrase",
        """\
pack: force-cues
version: "1"
kind: cues
ignore:
  - "nail gun"
  - "my carer|carers"
""",
        6,
        ["is a phrase of cue", "carer.carer"],
    ),
    (
        "cue phrase that is an ignored phrase",
        """\
pack: force-cues
version: "1"
kind: cues
strands:
  - id: local
    name: Local
    cues:
      - {id: local.one, phrases: ["nail gun"]}
""",
        8,
        ["already an ignored phrase"],
    ),
    (
        "strand severity that is not a severity",
        """\
pack: force-cues
version: "1"
kind: cues
strands:
  - id: local
    name: Local
    severity: urgent
    cues:
      - {id: local.one, phrases: ["zebra crossing"]}
""",
        7,
        ["severity", "unknown value", "'high'"],
    ),
    (
        "second negation section",
        """\
pack: force-cues
version: "1"
kind: cues
negation:
  before: [no]
strands: []
""",
        4,
        ["negation is already defined"],
    ),
    # -- issue 13: escalations, this_call, categories --
    (
        "an escalation that tests nothing",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: low
    title: t
    when: {kind: presentation, any_of: [withheld]}
    escalate:
      - {severity: high}
""",
        13,
        ["score_at_least or when"],
    ),
    (
        "a score to reach with no half-life to make one",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: low
    title: t
    when: {kind: count, fact: contacts, per: [number], within_days: 3, value: 1}
    escalate:
      - {severity: high, score_at_least: 1}
""",
        13,
        ["half_life_days"],
    ),
    (
        "this_call naming nothing",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: low
    title: t
    when: {kind: this_call}
""",
        11,
        ["incident_types or qualifiers"],
    ),
    (
        "this_call naming an unknown incident type",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: low
    title: t
    when: {kind: this_call, incident_types: [burglery]}
""",
        11,
        ["unknown incident type", "burglery"],
    ),
    (
        "an unknown category",
        ALERTS_HEAD
        + """\
  - id: r1
    alert: x
    severity: low
    title: "{score}"
    when: {kind: count, fact: contacts, per: [number], within_days: 3, value: 1,
           categories: [crimes]}
""",
        12,
        ["unknown value", "'crime', 'asb', 'other' or 'unknown'"],
    ),
]


@pytest.mark.parametrize(("name", "text", "line", "words"), BAD, ids=[b[0] for b in BAD])
def test_invalid_pack_refused_with_file_line_and_reason(
    tmp_path: Path, name: str, text: str, line: int, words: list[str]
) -> None:
    write(tmp_path, "force.yaml", text)
    found = problems(tmp_path)
    assert len(found) >= 1
    file, at, reason = found[0]
    assert file == "force.yaml"
    assert at == line, found
    for word in words:
        assert word in reason, found


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    write(
        tmp_path, "a.yaml", "pack: a\nversion: '1'\nkind: alerts\nrules:\n  - id: r\n    bogus: 1\n"
    )
    write(tmp_path, "b.yaml", "pack: b\nversion: '1'\nkind: advice\nincident_types: 3\n")
    found = problems(tmp_path)
    assert {(f, line) for f, line, _ in found} >= {("a.yaml", 6), ("b.yaml", 4)}
    message = str(pytest.raises(PackLoadError, load_paths, [tmp_path]).value)
    assert "a.yaml:6: " in message and "b.yaml:4: " in message


def test_same_pack_id_twice_in_one_folder(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", "pack: mine\nversion: '1'\nkind: alerts\n")
    write(tmp_path, "two.yaml", "pack: mine\nversion: '2'\nkind: alerts\n")
    assert problems(tmp_path) == [
        ("two.yaml", 1, f"pack 'mine' is also defined in {tmp_path / 'one.yaml'}")
    ]


def test_missing_rules_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackLoadError) as caught:
        load_paths([tmp_path / "nowhere"])
    assert "no such file or directory" in str(caught.value)


def test_force_pack_replaces_the_shipped_pack_of_the_same_id(tmp_path: Path) -> None:
    write(
        tmp_path,
        "my-advice.yaml",
        """\
pack: advice
version: "force-1"
kind: advice
incident_types:
  - id: burglary
    name: Burglary
    preservation:
      - {id: burglary.local_only, text: Our own wording.}
  # The shipped alert rules name these two (MARAC repeat, repeat missing).
  - {id: domestic_abuse, name: Domestic abuse, category: crime}
  - {id: missing_person, name: Missing person, category: other}
  # kept: the shipped near-repeat rule (alerts.yaml) counts it
  - id: vehicle_crime
    name: Vehicle crime
""",
    )
    # Replacing the catalogue drops the other incident types (and the qualifiers) the shipped
    # prompts refer to, so the set is refused as a whole...
    found = problems(tmp_path)
    assert found and all(
        "unknown incident type" in r or "unknown qualifier" in r for _, _, r in found
    )
    # (the cue effects name qualifiers and prompts too: issue 14)
    assert {f for f, _, _ in found} == {"thrive.yaml", "cues.yaml"}
    # ...until the force also supplies its prompts (here: a copy without per-type prompts).
    prompts = shipped_text("thrive.yaml")
    kept = [
        block
        for block in prompts.split("\n  - ")
        if "incident_types:" not in block and "qualifiers:" not in block
    ]
    write(tmp_path, "my-prompts.yaml", "\n  - ".join(kept))
    # ...and its cues (here: the shipped lexicon without its effects, one line each).
    lexicon = shipped_text("cues.yaml").splitlines()
    write(tmp_path, "my-cues.yaml", "\n".join(x for x in lexicon if "effects:" not in x))
    rules = load_paths([tmp_path])
    assert [a.id for a in rules.advice["burglary"]] == ["burglary.local_only"]
    assert list(rules.incident_types) == [
        "burglary",
        "domestic_abuse",
        "missing_person",
        "vehicle_crime",
    ]
    origins = {p.pack.pack: p.origin for p in rules.packs}
    assert origins == {
        "advice": "force",
        "thrive-plus": "force",
        "core-alerts": "shipped",
        "cues": "force",
    }


def test_yaml_no_is_a_word_not_false(tmp_path: Path) -> None:
    # YAML 1.1 reads `no` as False, which would break the negation words; packs read YAML 1.2
    # booleans, and a boolean field still understands `no`.
    assert "no" in SHIPPED.lexicon.negate_before
    write(
        tmp_path,
        "x.yaml",
        "pack: x\nversion: '1'\nkind: alerts\nrules:\n  - {id: r, alert: a, severity: low,"
        " title: t, enabled: no, when: {kind: presentation, any_of: [withheld]}}\n",
    )
    rules = load_paths([tmp_path])
    assert [r.rule.enabled for r in rules.alert_rules if r.rule.id == "r"] == [False]


def test_shipped_packs_cover_the_required_catalogue() -> None:
    required = {
        "burglary", "assault", "sexual_offence", "domestic_abuse", "stalking_harassment",
        "criminal_damage", "vehicle_crime", "theft", "robbery", "fraud", "hate_crime",
        "missing_person", "concern_for_welfare", "asb",
    }  # fmt: skip
    assert required <= set(SHIPPED.incident_types)
    for itype in required:
        kinds = {a.kind for a in SHIPPED.advice[itype]}
        assert (
            {"preservation", "prevention"} <= kinds <= {"preservation", "prevention", "support"}
        ), itype
    assert [e.id for e in SHIPPED.elements] == [
        "threat", "harm", "risk", "investigation", "vulnerability", "engagement",
        "prevention", "preservation",
    ]  # fmt: skip
    assert {r.rule.alert for r in SHIPPED.alert_rules} >= {
        "repeat_victim", "repeat_caller", "household_risk", "vulnerability_marker",
        "withheld_number", "da_escalation", "asb_case_review", "marac_repeat", "repeat_missing",
    }  # fmt: skip
    assert sorted(p.name for p in SHIPPED_DIR.glob("*.yaml")) == [
        "advice.yaml", "alerts.yaml", "cues.yaml", "thrive.yaml",
    ]  # fmt: skip


def test_a_window_longer_than_the_lookup_horizon_is_refused() -> None:
    # The history lookup reads HISTORY_HORIZON_DAYS back; a longer window would undercount.
    assert load_paths([], max_window_days=400).horizon_days == 365
    with pytest.raises(PackLoadError) as caught:
        load_paths([], max_window_days=300)
    text = shipped_text("alerts.yaml").splitlines()
    # Count windows only (a marker's `set_within_days` does not read contacts).
    lines = [i + 1 for i, line in enumerate(text) if re.search(r"(?<!set_)within_days: 365", line)]
    found = [(Path(p.file).name, p.line) for p in caught.value.problems]
    assert found == [("alerts.yaml", line) for line in lines]
    assert "HISTORY_HORIZON_DAYS" in caught.value.problems[0].reason
