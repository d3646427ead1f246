"""The QA export: one CSV row per call's latest assessment, ids and codes only.

No free text leaves through it (element texts, grade reasons and narratives can hold personal
data); QA opens the record itself (audit-logged) when a row needs reading.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, date, datetime, time

from app.cells import csv_writer
from app.errors import Unprocessable
from app.thrive.assessment import ExportRow
from app.thrive.schemas import Element, Grade
from app.thrive.validation import is_below

COLUMNS = [
    "call_id",
    "version",
    "submitted_by",
    "handler_id",
    "handlers",
    "offered_at",
    "answered_at",
    "ended_at",
    "submitted_at",
    "incident_type",
    "grade",
    "suggested_grade",
    "below_suggested",
    "grade_reason_given",
    *[f"{e.value}_risk" for e in Element],
    "preservation_given",
    "prevention_given",
    "prompts_answered",
    "repeat_victim_check",
    "victim",
    "domestic_abuse",
    "alert_kinds",
]


class BadRange(Unprocessable):
    code = "bad_range"


def parse_bound(value: str, name: str) -> datetime:
    """A date (midnight UTC) or an RFC 3339 date-time (naive read as UTC)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRange(f"{name} must be a date (2026-11-01) or an RFC 3339 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def date_range(start: str, end: str) -> tuple[datetime, datetime]:
    lower, upper = parse_bound(start, "from"), parse_bound(end, "to")
    if upper <= lower:
        raise BadRange("to must be after from (from is inclusive, to exclusive)")
    return lower, upper


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def to_csv(rows: Iterable[ExportRow]) -> str:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        a, call = row.assessment, row.call
        grade = Grade(a.grade)
        suggested = Grade(a.suggested_grade) if a.suggested_grade else None
        elements = a.elements or {}
        writer.writerow(
            [
                call.id,
                a.version,
                a.submitted_by,
                call.handler_id or "",
                ";".join(call.handlers or []),
                _time(call.offered_at),
                _time(call.answered_at),
                _time(call.ended_at),
                _time(a.submitted_at),
                a.incident_type,
                grade.value,
                suggested.value if suggested else "",
                _yes_no(suggested is not None and is_below(grade, suggested)),
                _yes_no(bool(a.grade_reason)),
                *[(elements.get(e.value) or {}).get("risk", "") for e in Element],
                len(a.advice_given.get("preservation", [])),
                len(a.advice_given.get("prevention", [])),
                len(a.prompts_answered or []),
                a.repeat_victim_check or "",
                _yes_no(a.victim),
                _yes_no(a.domestic_abuse),
                ";".join(a.alert_kinds or []),
            ]
        )
    return out.getvalue()
