"""Pure checks of an assessment against the call's alerts and the rule packs (no I/O).

Every problem is collected, so the handler sees them all in one 422 rather than one per try.
Each is `{"field", "reason"}`: the field names (`incident_type`, `grade`, `grade_reason`,
`elements`, `elements.<element>.risk`, `elements.<element>.text`, `repeat_victim_check`,
`advice_given`, `prompts_answered`) are a contract with the handler's screen, which shows each
reason beside its field; reasons are short plain English, for a handler to read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from app.errors import AppError
from app.thrive.catalogue import DOMESTIC_ABUSE
from app.thrive.schemas import AssessmentIn, Element, Grade

# The grade an alert suggests when its rule names none (an alert rule's `suggest_grade` in the
# pack wins). The call's suggested grade is the most urgent of its alerts' suggestions. It is a
# suggestion for the handler (people grade, the service does not): grading below it is
# allowed but needs a reason, which QA reads. Low and info alerts suggest nothing. Kept small
# and next to the check that uses it; a force changes it per rule in its alert pack.
SUGGESTED_GRADE_BY_SEVERITY: dict[str, Grade] = {
    "critical": Grade.emergency,
    "high": Grade.priority,
    "medium": Grade.scheduled,
}

# Most urgent first: a lower index is a higher grade.
GRADE_ORDER: tuple[Grade, ...] = (
    Grade.emergency,
    Grade.priority,
    Grade.scheduled,
    Grade.resolution_without_deployment,
)

# The repeat-victim check is due on every call with a victim, alert or not (the force measures
# it on every such call): the record needs a yes or a no, and `not_applicable` only fits a
# call with no victim. These alerts make it due even then (the caller's history says they, or
# their household, have been victims).
REPEAT_CHECK_ALERTS = frozenset(
    {"repeat_victim", "household_risk", "da_escalation", "marac_repeat", "asb_case_review"}
)

# Severities (of an alert or a cue's strand) that make the risk elements required, most
# severe first. The risk elements are the ones a call-taker must always weigh when a call
# carries such a sign or is domestic abuse: a level other than not applicable and a text.
RISK_SEVERITIES: tuple[str, ...] = ("critical", "high")
RISK_ELEMENTS = frozenset({Element.threat, Element.harm, Element.risk, Element.vulnerability})


class AssessmentInvalid(AppError):
    status, code = 422, "assessment_invalid"


@dataclass(frozen=True)
class Alert:
    kind: str
    severity: str
    suggested_grade: str | None = None  # the rule's own suggestion, if it makes one
    tags: tuple[str, ...] = ()

    def suggests(self) -> Grade | None:
        if self.suggested_grade is not None and self.suggested_grade in Grade.__members__:
            return Grade(self.suggested_grade)
        return SUGGESTED_GRADE_BY_SEVERITY.get(self.severity)


@dataclass(frozen=True)
class RaisedCue:
    """A hidden-vulnerability cue the call's narrative raised, with its strand's severity and
    the grade floor its effects set (None: none)."""

    strand: str
    strand_name: str
    severity: str
    grade_floor: str | None = None


@dataclass(frozen=True)
class Problem:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


def suggested_grade(alerts: Iterable[Alert], floors: Iterable[str | None] = ()) -> Grade | None:
    """The most urgent grade any of the alerts suggests or any cue's floor sets, or None."""
    suggested = [grade for grade in (a.suggests() for a in alerts) if grade is not None]
    suggested += [Grade(f) for f in floors if f is not None and f in Grade.__members__]
    return min(suggested, key=GRADE_ORDER.index) if suggested else None


def is_below(grade: Grade, other: Grade) -> bool:
    return GRADE_ORDER.index(grade) > GRADE_ORDER.index(other)


def _humanise(kind: str) -> str:
    return kind.replace("_", " ")


def _element_name(element: Element) -> str:
    return element.value.capitalize()


def risk_required_because(
    *, alerts: Iterable[Alert], cues: Iterable[RaisedCue], domestic_abuse: bool
) -> str | None:
    """Why threat, harm, risk and vulnerability must be assessed on this call, or None.

    One reason, the weightiest: the most severe high or critical alert, else a high-severity
    cue, else domestic abuse. Plain words for the handler's screen (no ids)."""
    serious = [a for a in alerts if a.severity in RISK_SEVERITIES]
    if serious:
        top = min(serious, key=lambda a: RISK_SEVERITIES.index(a.severity))
        return f"the call carries a {top.severity} alert ({_humanise(top.kind)})"
    cue = next((c for c in cues if c.severity in RISK_SEVERITIES), None)
    if cue is not None:
        return f"the narrative raised a {cue.severity}-severity cue ({cue.strand_name.lower()})"
    if domestic_abuse:
        return "domestic abuse"
    return None


def check_assessment(
    body: AssessmentIn,
    *,
    incident_type: str | None,
    alerts: Iterable[Alert],
    cues: Iterable[RaisedCue] = (),
    advice_kinds: Mapping[str, str],
    advice_given: list[str],
    prompt_ids: Iterable[str],
    prompts_answered: list[str],
    qualifiers: Collection[str] = (),
) -> list[Problem]:
    """What is wrong with `body` for a call carrying `alerts` and narrative `cues`, in the
    order the form shows the fields.

    `incident_type` is the effective one (the body's, or the one set during the call; None:
    neither). `advice_kinds` maps each advice id of that incident type to its kind;
    `advice_given` and `prompts_answered` are the effective lists (the body's, or what was
    marked during the call).
    """
    alerts = list(alerts)
    problems: list[Problem] = []

    if incident_type is None:
        problems.append(Problem("incident_type", "choose the incident type"))

    cues = list(cues)
    if body.grade is None:
        problems.append(Problem("grade", "choose a grade"))
    else:
        suggested = suggested_grade(alerts, (c.grade_floor for c in cues))
        if suggested is not None and is_below(body.grade, suggested) and not body.grade_reason:
            by = (
                "the call's alerts suggest"
                if suggested_grade(alerts) == suggested
                else "a cue in the narrative suggests"
            )
            problems.append(
                Problem(
                    "grade_reason",
                    f"{by} {_humanise(suggested.value)}; a grade of "
                    f"{_humanise(body.grade.value)} needs a reason",
                )
            )

    missing = [e.value for e in Element if e not in body.elements]
    if missing:
        problems.append(
            Problem(
                "elements",
                "every THRIVE+ element needs a risk level; missing: " + ", ".join(missing),
            )  # fmt: skip
        )
    if all(value.risk == "not_applicable" for value in body.elements.values()):
        problems.append(
            Problem(
                "elements",
                "not every element can be not applicable: give at least one a risk level",
            )
        )
    # Either says so: a DA incident type flagged false is still domestic abuse here.
    domestic_abuse = (
        body.domestic_abuse is True
        or incident_type == DOMESTIC_ABUSE
        or DOMESTIC_ABUSE in qualifiers  # the call's DA qualifier (app.thrive.qualifiers)
    )
    because = risk_required_because(alerts=alerts, cues=cues, domestic_abuse=domestic_abuse)
    for element in Element:
        value = body.elements.get(element)
        if value is None:
            continue  # reported as missing above
        name = _element_name(element)
        required = because is not None and element in RISK_ELEMENTS
        if required and value.risk == "not_applicable":
            problems.append(
                Problem(
                    f"elements.{element.value}.risk",
                    f"{because}: {element.value} needs a risk level other than not applicable",
                )
            )
        if value.text:
            continue
        if required:
            problems.append(
                Problem(
                    f"elements.{element.value}.text", f"{because}: say what the {element.value} is"
                )
            )
        elif value.risk != "not_applicable":
            problems.append(
                Problem(
                    f"elements.{element.value}.text",
                    f"{name}: say why the risk is {value.risk} (or mark it not applicable)",
                )
            )

    due = sorted({a.kind for a in alerts} & REPEAT_CHECK_ALERTS)
    if (due or body.victim) and body.repeat_victim_check not in ("yes", "no"):
        why = (
            "the call carried a " + " and a ".join(_humanise(k) for k in due) + " alert"
            if due
            else "the caller is a victim"
        )
        problems.append(
            Problem(
                "repeat_victim_check",
                f"{why}: answer the repeat-victim check with yes or no",
            )
        )

    if incident_type is not None:
        unknown_advice = sorted({a for a in advice_given if a not in advice_kinds})
        if unknown_advice:
            problems.append(
                Problem(
                    "advice_given",
                    "advice not offered for this incident type: " + ", ".join(unknown_advice),
                )
            )
    known_prompts = set(prompt_ids)
    unknown_prompts = sorted({p for p in prompts_answered if p not in known_prompts})
    if unknown_prompts:
        problems.append(
            Problem(
                "prompts_answered",
                "prompts not offered on this call: " + ", ".join(unknown_prompts),
            )
        )
    return problems


def advice_by_kind(
    advice_given: list[str], advice_kinds: Mapping[str, str]
) -> dict[str, list[str]]:
    """The given ids filed by kind (preservation, prevention), duplicates removed, in order."""
    filed: dict[str, list[str]] = {"preservation": [], "prevention": []}
    for advice_id in dict.fromkeys(advice_given):
        filed.setdefault(advice_kinds[advice_id], []).append(advice_id)
    return filed
