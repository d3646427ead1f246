"""Months as the force counts them: a call belongs to the UK-local month it was offered in.

`"2022-06"` is the month; its bounds are UK local midnights, turned to UTC for the queries
(British Summer Time moves them by an hour, so a call at 23:30 UTC on 31 May 2022 is June's).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from app.errors import Unprocessable

UK = ZoneInfo("Europe/London")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# A report over more months than this is almost certainly a mistake (and an expensive one).
MAX_MONTHS = 120
# Not strftime("%b"): that follows the process's locale.
_ABBREVIATIONS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


class BadMonth(Unprocessable):
    code = "bad_month"


def parse(value: str, name: str = "month") -> tuple[int, int]:
    """(year, month) of "YYYY-MM"; 422 `bad_month` naming the field otherwise."""
    match = _MONTH.match(value)
    if match is None:
        raise BadMonth(f"{name} must be a month written YYYY-MM (2026-11)", {"field": name})
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 2000:
        raise BadMonth(f"{name} is not a month from 2000-01 on", {"field": name})
    return year, month


def label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def following(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def display(month: str) -> str:
    """ "2022-06" -> "Jun 2022": the column heading of the force's table."""
    year, number = parse(month)
    return f"{_ABBREVIATIONS[number - 1]} {year}"


def start_utc(year: int, month: int) -> datetime:
    """The UK-local midnight that starts the month, in UTC."""
    return datetime(year, month, 1, tzinfo=UK).astimezone(UTC)


def bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """[start, end) of the UK-local month, in UTC."""
    return start_utc(year, month), start_utc(*following(year, month))


def of(moment: datetime) -> str:
    """The UK-local month of an aware datetime."""
    local = moment.astimezone(UK)
    return label(local.year, local.month)


def local_date(moment: datetime) -> date:
    return moment.astimezone(UK).date()


def span(start: str, end: str) -> list[str]:
    """Every month from `start` to `end`, inclusive; 422 if reversed or too long."""
    first, last = parse(start, "from"), parse(end, "to")
    if last < first:
        raise BadMonth("to is before from (both months are inclusive)", {"field": "to"})
    months: list[str] = []
    current = first
    while current <= last:
        months.append(label(*current))
        if len(months) > MAX_MONTHS:
            raise BadMonth(f"at most {MAX_MONTHS} months at a time", {"field": "to"})
        current = following(*current)
    return months
