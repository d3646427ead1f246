"""Reading and validating a force's history CSV files: the files and columns expected, one
parser per field kind (each raises `Bad` with a reason that never contains the value), and
the row reader that records header and encoding problems as `RowError`s."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.history import geo
from app.telephony.numbers import normalise

FILES = ("people.csv", "households.csv", "memberships.csv", "contacts.csv", "markers.csv")
COLUMNS: dict[str, tuple[str, ...]] = {
    "people.csv": ("person_id", "name", "date_of_birth", "phones"),
    "households.csv": ("household_id", "uprn", "address"),
    "memberships.csv": ("person_id", "household_id", "from_date", "to_date"),
    "contacts.csv": (
        "contact_id",
        "occurred_at",
        "phone",
        "person_id",
        "household_id",
        "incident_type",
        "victim",
        "domestic_abuse",
        "outcome",
    ),
    "markers.csv": ("marker_id", "subject_type", "subject_id", "kind", "set_at", "expires_at"),
}
# Columns a file may have (read when present; a row without them reads them as empty):
# households' coordinates (near repeat), memberships' relationship, who set a marker.
OPTIONAL: dict[str, tuple[str, ...]] = {
    "households.csv": ("easting", "northing", "latitude", "longitude"),
    "memberships.csv": ("relationship",),
    "markers.csv": ("set_by",),
}
# memberships.csv `relationship`: how the person relates to the household's reference person
# (the member recorded with none); alerts name it ("Jo Demo (partner, 41)").
RELATIONSHIPS = ("partner", "ex_partner", "child", "parent", "sibling", "carer", "lodger", "other")
# A UK force's exports carry local wall-clock times when they carry no offset.
LOCAL_TZ = ZoneInfo("Europe/London")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$")
UPRN = re.compile(r"^\d{1,12}$")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0", ""})


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return (
            f"{where}: {self.column}: {self.reason}" if self.column else f"{where}: {self.reason}"
        )


class Bad(Exception):
    def __init__(self, column: str | None, reason: str) -> None:
        self.column, self.reason = column, reason


# ---- field parsers: each raises Bad with a reason that never contains the value ----------


def field_id(value: str, column: str, required: bool = True) -> str | None:
    if not value:
        if required:
            raise Bad(column, "required")
        return None
    if not _ID.match(value):
        raise Bad(column, "not a valid id (letters, digits, _.:/- ; at most 64)")
    return value


def field_text(value: str, column: str, limit: int) -> str | None:
    if len(value) > limit:
        raise Bad(column, f"longer than {limit} characters")
    return value or None


def field_date(value: str, column: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return datetime.strptime(value, "%d/%m/%Y").date()
    except ValueError:
        raise Bad(column, "not a date (YYYY-MM-DD or DD/MM/YYYY)") from None


def field_datetime(value: str, column: str, required: bool) -> datetime | None:
    if not value:
        if required:
            raise Bad(column, "required")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Bad(column, "not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LOCAL_TZ)
    return parsed.astimezone(UTC)


def field_relationship(value: str, column: str) -> str | None:
    """One of RELATIONSHIPS (any case, "ex-partner" and "ex partner" too), or None if empty."""
    word = value.strip().lower().replace("-", "_").replace(" ", "_")
    if not word:
        return None
    if word not in RELATIONSHIPS:
        raise Bad(column, "not one of " + ", ".join(RELATIONSHIPS))
    return word


def field_bool(value: str, column: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise Bad(column, "not true or false")


def field_number(value: str, column: str) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise Bad(column, "not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise Bad(column, "not a number")
    return number


Location = tuple[float, float, int]  # easting, northing, grid cell


def field_location(easting: str, northing: str, latitude: str, longitude: str) -> Location | None:
    """A household's place on the British National Grid, from `easting`/`northing` (metres)
    or `latitude`/`longitude` (WGS84, converted); both empty: None."""
    e, n = field_number(easting, "easting"), field_number(northing, "northing")
    lat, lon = field_number(latitude, "latitude"), field_number(longitude, "longitude")
    if (e is None) != (n is None):
        raise Bad("northing" if n is None else "easting", "easting and northing go together")
    if (lat is None) != (lon is None):
        raise Bad("longitude" if lon is None else "latitude", "latitude and longitude go together")
    if e is not None and lat is not None:
        raise Bad("latitude", "give easting and northing or latitude and longitude, not both")
    if e is not None and n is not None:
        problem = geo.check_bng(e, n)
        if problem:
            raise Bad("easting" if problem.startswith("easting") else "northing", problem)
    elif lat is not None and lon is not None:
        problem = geo.check_wgs84(lat, lon)
        if problem:
            raise Bad("latitude" if problem.startswith("latitude") else "longitude", problem)
        e, n = geo.to_bng(lat, lon)
    else:
        return None
    assert e is not None and n is not None
    return e, n, geo.cell_of(e, n)


@lru_cache(maxsize=262_144)
def e164_of(raw: str) -> str | None:
    number = normalise(raw)
    return number.e164


def field_phone(value: str, column: str) -> str | None:
    if not value:
        return None
    e164 = e164_of(value)
    if e164 is None:
        raise Bad(column, "not a UK phone number")
    return e164


# ---- reading --------------------------------------------------------------------------


def csv_rows(path: Path, errors: list[RowError]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) for every data row; header problems are recorded as errors."""
    name = path.name
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except UnicodeDecodeError:
            errors.append(RowError(name, first_bad_utf8_line(path), None, "not UTF-8"))
            return
        except csv.Error as exc:
            errors.append(RowError(name, 1, None, f"malformed CSV header ({exc})"))
            return
        if header is None:
            errors.append(RowError(name, 1, None, "empty file: a header row is required"))
            return
        names = [h.strip().lower() for h in header]
        missing = [c for c in COLUMNS[name] if c not in names]
        if missing:
            errors.append(RowError(name, 1, None, "missing columns: " + ", ".join(missing)))
            return
        wanted = (*COLUMNS[name], *OPTIONAL.get(name, ()))
        index = {c: names.index(c) for c in wanted if c in names}
        width = len(names)
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                errors.append(RowError(name, first_bad_utf8_line(path), None, "not UTF-8"))
                return
            except csv.Error as exc:
                errors.append(RowError(name, reader.line_num, None, f"malformed CSV ({exc})"))
                return
            line = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if len(record) < width:
                errors.append(
                    RowError(name, line, None, f"expected {width} fields, found {len(record)}")
                )
                continue
            yield line, {c: record[i].strip() for c, i in index.items()}


def first_bad_utf8_line(path: Path) -> int:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def once(seen: dict[Any, int], key: Any, line: int, column: str) -> None:
    first = seen.get(key)
    if first is not None:
        raise Bad(column, f"duplicates line {first}")
    seen[key] = line
