"""`POST /api/v1/history/records`: the force's records system keeps our history current.

A request holds up to `MAX_RECORDS` records, each a person, household, membership, contact or
marker in the shape of the CSV import's row (the same columns, validated by the same field
parsers, `app.history.csv_fields`), as JSON. All or nothing: any bad record and nothing is
stored, and every bad record is reported as `{"index", "field", "reason"}` (never its value).
Idempotent by id: the same records again leave the same rows. Every summary the records change
is invalidated in the same transaction (generation counters, `app.history.writes.invalidate`),
so a marker set in the force's system is on the next ring of that number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.db import upsert_for, utcnow
from app.errors import AppError, PayloadTooLarge
from app.history import writes
from app.history.csv_fields import (
    UPRN,
    Bad,
    field_bool,
    field_date,
    field_datetime,
    field_id,
    field_location,
    field_phone,
    field_relationship,
    field_text,
)
from app.history.import_sinks import CONFLICT_KEYS, TABLE_COLUMNS
from app.history.models import Contact, Household, Marker, Person, PersonHousehold, Phone

MAX_RECORDS = 1000
MAX_REPORTED = 100

# The fields of each record type: the CSV file's columns (phones a list rather than a
# `;`-separated string), plus `type`.
FIELDS: dict[str, tuple[str, ...]] = {
    "person": ("person_id", "name", "date_of_birth", "phones"),
    "household": (
        "household_id", "uprn", "address", "easting", "northing", "latitude", "longitude",
    ),
    "membership": ("person_id", "household_id", "from_date", "to_date", "relationship"),
    "contact": (
        "contact_id", "occurred_at", "phone", "person_id", "household_id", "incident_type",
        "victim", "domestic_abuse", "outcome",
    ),
    "marker": (
        "marker_id", "subject_type", "subject_id", "kind", "set_at", "expires_at", "set_by",
    ),
}  # fmt: skip
_MODELS: dict[str, Any] = {
    "person": Person,
    "phone": Phone,
    "household": Household,
    "person_household": PersonHousehold,
    "contact": Contact,
    "marker": Marker,
}
_KIND = re.compile(r"[a-z][a-z0-9_]{0,39}")


class RecordsRejected(AppError):
    status, code = 422, "records_rejected"


class TooManyRecords(PayloadTooLarge):
    code = "too_many_records"


@dataclass
class _Batch:
    """Validated rows by table (the import's columns), and what they reference."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    people: dict[str, int] = field(default_factory=dict)  # id -> index of its record
    homes: dict[str, int] = field(default_factory=dict)
    keys: dict[tuple[str, Any], int] = field(default_factory=dict)  # duplicates
    # (kind, id) -> (index, field) of the first record naming an id not in this request.
    refs: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    def add(self, table: str, values: tuple[Any, ...]) -> None:
        self.rows.setdefault(table, []).append(dict(zip(TABLE_COLUMNS[table], values, strict=True)))

    def error(self, index: int, column: str | None, reason: str) -> None:
        self.errors.append({"index": index, "field": column, "reason": reason})


def _text(record: dict[str, Any], name: str) -> str:
    """A field as the CSV parsers take it: text, stripped; absent or null is empty."""
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Bad(name, "not text")
    return str(value).strip()


def _flag(record: dict[str, Any], name: str) -> bool:
    value = record.get(name)
    if isinstance(value, bool):
        return value
    return field_bool(_text(record, name), name)


def _once(batch: _Batch, key: tuple[str, Any], index: int, column: str) -> None:
    first = batch.keys.get(key)
    if first is not None:
        raise Bad(column, f"duplicates record {first}")
    batch.keys[key] = index


def _refer(batch: _Batch, kind: str, ident: str | None, index: int, column: str) -> None:
    known = batch.people if kind == "person" else batch.homes
    if ident is not None and ident not in known and (kind, ident) not in batch.refs:
        batch.refs[(kind, ident)] = (index, column)


def _person(batch: _Batch, r: dict[str, Any], i: int, now: Any) -> None:
    pid = field_id(_text(r, "person_id"), "person_id")
    values = (pid, field_text(_text(r, "name"), "name", 200),
              field_date(_text(r, "date_of_birth"), "date_of_birth"), now)  # fmt: skip
    raw = r.get("phones") or []
    if isinstance(raw, str):
        raw = raw.split(";")
    if not isinstance(raw, list) or len(raw) > 20:
        raise Bad("phones", "not a list of at most 20 phone numbers")
    phones: dict[str, None] = {}
    for item in raw:
        if not isinstance(item, str):
            raise Bad("phones", "not a list of phone numbers")
        e164 = field_phone(item.strip(), "phones")
        if e164:
            phones[e164] = None
    _once(batch, ("person", pid), i, "person_id")
    assert pid is not None
    batch.people[pid] = i
    batch.add("person", values)
    for e164 in phones:
        batch.add("phone", (e164, pid, None, None))


def _household(batch: _Batch, r: dict[str, Any], i: int, now: Any) -> None:
    hid = field_id(_text(r, "household_id"), "household_id")
    uprn = _text(r, "uprn") or None
    if uprn is not None and not UPRN.match(uprn):
        raise Bad("uprn", "not a UPRN (up to 12 digits)")
    place = field_location(*(_text(r, c) for c in ("easting", "northing", "latitude", "longitude")))
    values = (hid, uprn, field_text(_text(r, "address"), "address", 500),
              *(place or (None, None, None)), now)  # fmt: skip
    _once(batch, ("household", hid), i, "household_id")
    assert hid is not None
    batch.homes[hid] = i
    batch.add("household", values)


def _membership(batch: _Batch, r: dict[str, Any], i: int, now: Any) -> None:
    pid = field_id(_text(r, "person_id"), "person_id")
    hid = field_id(_text(r, "household_id"), "household_id")
    start = field_date(_text(r, "from_date"), "from_date")
    end = field_date(_text(r, "to_date"), "to_date")
    if start and end and end < start:
        raise Bad("to_date", "before from_date")
    relationship = field_relationship(_text(r, "relationship"), "relationship")
    _once(batch, ("membership", (pid, hid)), i, "person_id, household_id")
    _refer(batch, "person", pid, i, "person_id")
    _refer(batch, "household", hid, i, "household_id")
    batch.add("person_household", (pid, hid, start, end, relationship))


def _contact(batch: _Batch, r: dict[str, Any], i: int, now: Any) -> None:
    cid = field_id(_text(r, "contact_id"), "contact_id")
    values = (
        cid,
        field_datetime(_text(r, "occurred_at"), "occurred_at", required=True),
        field_phone(_text(r, "phone"), "phone"),
        field_id(_text(r, "person_id"), "person_id", required=False),
        field_id(_text(r, "household_id"), "household_id", required=False),
        field_text(_text(r, "incident_type"), "incident_type", 64),
        _flag(r, "victim"),
        _flag(r, "domestic_abuse"),
        field_text(_text(r, "outcome"), "outcome", 200),
        now,
    )
    _once(batch, ("contact", cid), i, "contact_id")
    _refer(batch, "person", values[3], i, "person_id")
    _refer(batch, "household", values[4], i, "household_id")
    batch.add("contact", values)


def _marker(batch: _Batch, r: dict[str, Any], i: int, now: Any) -> None:
    mid = field_id(_text(r, "marker_id"), "marker_id")
    subject_type = _text(r, "subject_type").lower()
    if subject_type not in ("person", "household"):
        raise Bad("subject_type", "not person or household")
    subject = field_id(_text(r, "subject_id"), "subject_id")
    kind = _text(r, "kind")
    if not _KIND.fullmatch(kind):
        raise Bad("kind", "not a marker kind (lower_snake_case)")
    set_at = field_datetime(_text(r, "set_at"), "set_at", required=True)
    expires = field_datetime(_text(r, "expires_at"), "expires_at", required=False)
    if set_at and expires and expires < set_at:
        raise Bad("expires_at", "before set_at")
    set_by = field_text(_text(r, "set_by"), "set_by", 64)
    _once(batch, ("marker", mid), i, "marker_id")
    _refer(batch, subject_type, subject, i, "subject_id")
    batch.add("marker", (mid, subject_type, subject, kind, set_by, set_at, expires))


_PARSERS: dict[str, Callable[[_Batch, dict[str, Any], int, Any], None]] = {
    "person": _person,
    "household": _household,
    "membership": _membership,
    "contact": _contact,
    "marker": _marker,
}


def validate(records: list[Any]) -> _Batch:
    """Every record checked; valid ones turned into table rows, bad ones into errors."""
    batch = _Batch()
    now = utcnow()
    for index, record in enumerate(records):
        try:
            if not isinstance(record, dict):
                raise Bad(None, "not an object")
            kind = record.get("type")
            if not isinstance(kind, str) or kind not in _PARSERS:
                raise Bad("type", "not one of " + ", ".join(_PARSERS))
            unknown = sorted(k for k in record if k != "type" and k not in FIELDS[kind])
            if unknown:
                raise Bad(unknown[0][:64], f"not a field of a {kind}")
            _PARSERS[kind](batch, record, index, now)
        except Bad as bad:
            batch.error(index, bad.column, bad.reason)
        if len(batch.errors) >= MAX_REPORTED:
            break
    return batch


async def _unknown_refs(session: AsyncSession, batch: _Batch) -> None:
    for kind, model in (("person", Person), ("household", Household)):
        wanted = sorted({ident for (k, ident) in batch.refs if k == kind})
        if not wanted:
            continue
        found = set(await session.scalars(select(model.id).where(model.id.in_(wanted))))
        for ident in wanted:
            if ident not in found:
                index, column = batch.refs[(kind, ident)]
                batch.error(index, column, f"unknown {kind} id")


async def _subjects_before(
    session: AsyncSession, batch: _Batch
) -> tuple[set[str | None], set[str | None], set[str | None]]:
    """The numbers, persons and households the records touch, as stored now (an update may
    move a contact or a marker away from its old subject, whose summaries change too)."""
    numbers: set[str | None] = set()
    persons: set[str | None] = {r["id"] for r in batch.rows.get("person", [])}
    homes: set[str | None] = {r["id"] for r in batch.rows.get("household", [])}
    for r in batch.rows.get("person_household", []):
        persons.add(r["person_id"])
        homes.add(r["household_id"])
    contacts = batch.rows.get("contact", [])
    for r in contacts:
        numbers.add(r["number"])
        persons.add(r["person_id"])
        homes.add(r["household_id"])
    if contacts:
        ids = [r["id"] for r in contacts]
        before = await session.execute(
            select(Contact.number, Contact.person_id, Contact.household_id).where(
                Contact.id.in_(ids)
            )
        )
        for number, person_id, household_id in before:
            numbers.add(number)
            persons.add(person_id)
            homes.add(household_id)
    markers = batch.rows.get("marker", [])
    subjects = [(r["subject_type"], r["subject_id"]) for r in markers]
    if markers:
        stored = await session.execute(
            select(Marker.subject_type, Marker.subject_id).where(
                Marker.id.in_([r["id"] for r in markers])
            )
        )
        subjects.extend((t, s) for t, s in stored)
    persons.update(s for t, s in subjects if t == "person")
    homes.update(s for t, s in subjects if t == "household")
    return numbers, persons, homes


async def _write(session: AsyncSession, batch: _Batch) -> None:
    for table in ("person", "phone", "household", "person_household", "contact", "marker"):
        rows = batch.rows.get(table)
        if table == "phone" and batch.rows.get("person"):
            # A person's phones are replaced by the record's list, as the import does.
            persons = [r["id"] for r in batch.rows["person"]]
            await session.execute(delete(Phone).where(Phone.person_id.in_(persons)))
        if not rows:
            continue
        stmt = upsert_for(session, _MODELS[table].__table__)
        keys = CONFLICT_KEYS[table]
        updates = {c: stmt.excluded[c] for c in TABLE_COLUMNS[table] if c not in keys}
        stmt = (
            stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)
            if updates
            else stmt.on_conflict_do_nothing(index_elements=list(keys))
        )
        await session.execute(stmt, rows)


async def upsert_records(
    session: AsyncSession, records: list[Any], *, actor: str
) -> dict[str, int]:
    """Validate and store `records` in the session's transaction; the stored rows by table.

    Raises TooManyRecords (413) beyond `MAX_RECORDS`, RecordsRejected (422, details: the
    errors) when any record is bad; nothing is written then."""
    if len(records) > MAX_RECORDS:
        raise TooManyRecords(
            f"at most {MAX_RECORDS} records a request", details={"max_records": MAX_RECORDS}
        )
    if not records:
        raise RecordsRejected("no records", details=[])
    batch = validate(records)
    if not batch.errors and batch.refs:
        await _unknown_refs(session, batch)
    if batch.errors:
        batch.errors.sort(key=lambda e: e["index"])
        raise RecordsRejected(
            f"{len(batch.errors)}{'+' if len(batch.errors) >= MAX_REPORTED else ''} bad "
            "record(s); nothing was stored",
            details=batch.errors[:MAX_REPORTED],
        )
    numbers, persons, homes = await _subjects_before(session, batch)
    # Bumped along the links as they were (old phones, old households) and as they are now.
    await writes.invalidate(session, numbers=numbers, person_ids=persons, household_ids=homes)
    await _write(session, batch)
    await writes.locate_contacts(
        session,
        contact_ids=[r["id"] for r in batch.rows.get("contact", [])],
        household_ids=[r["id"] for r in batch.rows.get("household", [])],
    )
    await writes.invalidate(session, numbers=numbers, person_ids=persons, household_ids=homes)
    stored = {table: len(rows) for table, rows in batch.rows.items()}
    audit.record(
        session,
        actor=actor,
        action="alteration",
        subject_type="history",
        records={"records": len(records), "rows": stored},
    )
    return stored
