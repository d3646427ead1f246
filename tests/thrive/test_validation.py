"""The pure assessment checker, table-driven: each rule alone, then all of them at once.

Each case names the problems expected, as (field, words the reason starts with), in the order
the form shows the fields. The bodies are real `AssessmentIn` models (parsed as the API does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from app.thrive.schemas import AssessmentIn, Element
from app.thrive.validation import Alert, RaisedCue, check_assessment
from tests.thrive.support import full_assessment, untouched_form

BURGLARY_ADVICE = {"burglary.lock_up": "prevention", "burglary.dont_touch_entry": "preservation"}
RISK = ("threat", "harm", "risk", "vulnerability")
KNIFE = RaisedCue(strand="weapons", strand_name="Weapons mentioned", severity="high")
CARER = RaisedCue(strand="carer_dependence", strand_name="Dependence on a carer", severity="medium")


def _elements(**risks: str) -> dict[str, dict[str, str]]:
    """Every element low with a text, except those given (`"n/a"`: not applicable, no text;
    `"<risk>:"`: that risk with no text)."""
    out = {e.value: {"risk": "low", "text": f"{e.value} considered"} for e in Element}
    for name, spec in risks.items():
        if spec == "n/a":
            out[name] = {"risk": "not_applicable", "text": ""}
        elif spec.endswith(":"):
            out[name] = {"risk": spec[:-1], "text": ""}
        else:
            out[name] = {"risk": spec, "text": f"{name} considered"}
    return out


def _risk_problems(because: str, *, text: bool = True) -> list[tuple[str, str]]:
    found = []
    for name in RISK:
        found.append((f"elements.{name}.risk", because))
        if text:
            found.append((f"elements.{name}.text", because))
    return found


@dataclass
class Case:
    name: str
    body: dict[str, Any]
    expected: list[tuple[str, str]]  # (field, start of its reason)
    alerts: list[Alert] = field(default_factory=list)
    cues: list[RaisedCue] = field(default_factory=list)
    incident_type: str | None = "burglary"  # the effective one (body's or set during the call)
    prompts_answered: list[str] = field(default_factory=list)


ALL_NA = {"elements": _elements(**dict.fromkeys([e.value for e in Element], "n/a"))}
RISK_NA = {"elements": _elements(**dict.fromkeys(RISK, "n/a"))}

CASES = [
    Case("a complete burglary record", full_assessment(), []),
    Case("grade omitted", full_assessment(grade=None), [("grade", "choose a grade")]),
    Case(
        "incident type neither sent nor set during the call",
        full_assessment(incident_type=None),
        [("incident_type", "choose the incident type")],
        incident_type=None,
    ),
    Case(
        "every element not applicable",
        full_assessment(**ALL_NA),
        [("elements", "not every element can be not applicable")],
    ),
    Case(
        "some elements not applicable is fine",
        full_assessment(elements=_elements(investigation="n/a", engagement="n/a")),
        [],
    ),
    Case(
        "an element missing",
        full_assessment(elements={k: v for k, v in _elements().items() if k != "harm"}),
        [("elements", "every THRIVE+ element needs a risk level; missing: harm")],
    ),
    Case(
        "a risk level without a text",
        full_assessment(elements=_elements(prevention="medium:")),
        [("elements.prevention.text", "Prevention: say why the risk is medium")],
    ),
    Case(
        "high alert: the risk elements need a level and a text",
        full_assessment(**RISK_NA, grade="emergency"),
        _risk_problems("the call carries a high alert (vulnerability marker): "),
        alerts=[Alert("vulnerability_marker", "high")],
    ),
    Case(
        "critical alert named before a high one",
        full_assessment(elements=_elements(threat="n/a"), grade="emergency"),
        [
            ("elements.threat.risk", "the call carries a critical alert (household risk): "),
            ("elements.threat.text", "the call carries a critical alert (household risk): "),
        ],
        alerts=[Alert("repeat_caller", "high"), Alert("household_risk", "critical")],
    ),
    Case(
        "high alert: a level without a text is not enough",
        full_assessment(elements=_elements(harm="medium:"), grade="emergency"),
        [("elements.harm.text", "the call carries a high alert (repeat caller): say what the")],
        alerts=[Alert("repeat_caller", "high")],
    ),
    Case(
        "medium and low alerts require nothing more",
        full_assessment(**RISK_NA),
        [],
        alerts=[Alert("repeat_caller", "medium"), Alert("withheld_number", "low")],
    ),
    Case(
        "high-severity cue",
        full_assessment(**RISK_NA),
        _risk_problems("the narrative raised a high-severity cue (weapons mentioned): "),
        cues=[CARER, KNIFE],
    ),
    Case("medium cue requires nothing more", full_assessment(**RISK_NA), [], cues=[CARER]),
    Case(
        "domestic abuse by incident type",
        full_assessment(**RISK_NA, incident_type="domestic_abuse", advice_given=[]),
        _risk_problems("domestic abuse: "),
        incident_type="domestic_abuse",
    ),
    Case(
        "domestic abuse by the body's flag",
        full_assessment(**RISK_NA, domestic_abuse=True),
        _risk_problems("domestic abuse: "),
    ),
    Case(
        "domestic abuse set during the call, body without an incident type",
        full_assessment(**RISK_NA, incident_type=None, advice_given=[]),
        _risk_problems("domestic abuse: "),
        incident_type="domestic_abuse",
    ),
    Case(
        "victim: the repeat-victim check needs yes or no",
        full_assessment(repeat_victim_check="not_applicable"),
        [("repeat_victim_check", "the caller is a victim: answer the repeat-victim check")],
    ),
    Case(
        "victim: the check missing",
        full_assessment(repeat_victim_check=None),
        [("repeat_victim_check", "the caller is a victim: ")],
    ),
    Case(
        "not a victim, no alert: the check may be not applicable",
        full_assessment(repeat_victim_check="not_applicable", victim=False),
        [],
    ),
    Case(
        "repeat-victim alert: the check is due for a non-victim too",
        full_assessment(repeat_victim_check=None, victim=False),
        [("repeat_victim_check", "the call carried a repeat victim alert: ")],
        alerts=[Alert("repeat_victim", "low")],
    ),
    Case(
        "grade below the suggestion without a reason",
        full_assessment(grade="scheduled"),
        [("grade_reason", "the call's alerts suggest priority; a grade of scheduled")],
        alerts=[Alert("vulnerability_marker", "high")],
    ),
    Case(
        "grade below the suggestion with a reason",
        full_assessment(grade="scheduled", grade_reason="safe at a neighbour's"),
        [],
        alerts=[Alert("vulnerability_marker", "high")],
    ),
    Case(
        "unknown advice and prompts",
        full_assessment(advice_given=["burglary.lock_up", "made.up"]),
        [
            ("advice_given", "advice not offered for this incident type: made.up"),
            ("prompts_answered", "prompts not offered on this call: nope"),
        ],
        prompts_answered=["threat.where_who", "nope"],
    ),
    Case(
        "the issue's untouched form on a DA escalation call with knife and pregnancy cues",
        untouched_form("domestic_abuse"),
        [
            ("grade", "choose a grade"),
            ("elements", "not every element can be not applicable"),
            *_risk_problems("the call carries a high alert (da escalation): "),
            ("repeat_victim_check", "the call carried a da escalation and a repeat victim alert: "),
        ],
        alerts=[Alert("da_escalation", "high"), Alert("repeat_victim", "high")],
        cues=[
            KNIFE,
            RaisedCue(strand="pregnancy", strand_name="Pregnancy", severity="high"),
        ],
        incident_type="domestic_abuse",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_checker(case: Case) -> None:
    body = AssessmentIn.model_validate(case.body)
    problems = check_assessment(
        body,
        incident_type=case.incident_type,
        alerts=case.alerts,
        cues=case.cues,
        advice_kinds=BURGLARY_ADVICE if case.incident_type == "burglary" else {},
        advice_given=body.advice_given or [],
        prompt_ids=["threat.where_who"],
        prompts_answered=case.prompts_answered,
    )
    assert [p.field for p in problems] == [f for f, _ in case.expected], problems
    for problem, (_, start) in zip(problems, case.expected, strict=True):
        assert problem.reason.startswith(start), problem
        # Reasons are for a handler to read: plain words, no ids with underscores.
        assert "_" not in problem.reason.replace("made.up", ""), problem


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_blank_grade_or_incident_type_is_not_chosen(blank: str | None) -> None:
    body = AssessmentIn.model_validate(full_assessment(grade=blank, incident_type=blank))
    assert body.grade is None and body.incident_type is None


@pytest.mark.parametrize(
    "bad", [{"grade": "whenever"}, {"grade": 3}, {"incident_type": 7}, {"incident_type": "x" * 65}]
)
def test_a_bad_value_is_still_a_validation_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AssessmentIn.model_validate(full_assessment(**bad))
