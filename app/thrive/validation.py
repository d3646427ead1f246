"""Pure checks of an assessment against the call's alerts and the rule packs (no I/O).

Every problem is collected, so the handler sees them all in one 422 rather than one per try.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.errors import AppError
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

# Alerts that make the repeat-victim check due: the record needs a yes or a no.
REPEAT_CHECK_ALERTS = frozenset({"repeat_victim", "household_risk"})


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
class Problem:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


def suggested_grade(alerts: Iterable[Alert]) -> Grade | None:
    """The most urgent grade any of the alerts suggests, or None."""
    suggested = [grade for grade in (a.suggests() for a in alerts) if grade is not None]
    return min(suggested, key=GRADE_ORDER.index) if suggested else None


def is_below(grade: Grade, other: Grade) -> bool:
    return GRADE_ORDER.index(grade) > GRADE_ORDER.index(other)


def check_assessment(
    body: AssessmentIn,
    *,
    alerts: Iterable[Alert],
    advice_kinds: Mapping[str, str],
    advice_given: list[str],
    prompt_ids: Iterable[str],
    prompts_answered: list[str],
) -> list[Problem]:
    """What is wrong with `body` for a call carrying `alerts`.

    `advice_kinds` maps each advice id of the incident type to its kind; `advice_given` and
    `prompts_answered` are the effective lists (the body's, or what was marked during the call).
    """
    alerts = list(alerts)
    problems: list[Problem] = []

    missing = [e.value for e in Element if e not in body.elements]
    if missing:
        problems.append(
            Problem(
                "elements",
                "every THRIVE+ element needs a risk level; missing: " + ", ".join(missing),
            )  # fmt: skip
        )
    for element, value in body.elements.items():
        if value.risk != "not_applicable" and not value.text:
            problems.append(
                Problem(
                    f"elements.{element.value}.text",
                    f"{element.value}: say why the risk is {value.risk}"
                    " (or mark it not_applicable)",
                )
            )

    unknown_advice = sorted({a for a in advice_given if a not in advice_kinds})
    if unknown_advice:
        problems.append(
            Problem(
                "advice_given",
                f"advice ids not in the pack for incident type {body.incident_type}: "
                + ", ".join(unknown_advice),
            )
        )
    known_prompts = set(prompt_ids)
    unknown_prompts = sorted({p for p in prompts_answered if p not in known_prompts})
    if unknown_prompts:
        problems.append(
            Problem(
                "prompts_answered",
                "prompt ids not offered for this incident type and these alerts: "
                + ", ".join(unknown_prompts),
            )
        )

    due = sorted({a.kind for a in alerts} & REPEAT_CHECK_ALERTS)
    if due and body.repeat_victim_check not in ("yes", "no"):
        problems.append(
            Problem(
                "repeat_victim_check",
                "the call carried a " + " and a ".join(due) + " alert: answer the "
                "repeat-victim check with yes or no before submitting",
            )
        )

    suggested = suggested_grade(alerts)
    if suggested is not None and is_below(body.grade, suggested) and not body.grade_reason:
        problems.append(
            Problem(
                "grade_reason",
                f"the call's alerts suggest {suggested.value}; a grade of {body.grade.value} "
                "needs a reason",
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
