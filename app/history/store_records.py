"""The records a summary shows, from the store: recent contacts (capped) and markers of a
number, persons and households, for one summary or many in one query."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.db_direct import Reader
from app.history.models import Contact, Marker
from app.history.store_links import Links, fixed_rows
from app.rules.facts import ContactRef, MarkerRef

# Contact.caller_role of a call about someone else (app.history.attribution says so too).
THIRD_PARTY = "third_party"

# A pathological subject (a switchboard number, a hostel) must not make one lookup read
# thousands of rows: the most recent contacts are enough for every rule window.
MAX_CONTACTS = 1000


Contacts = tuple[list[ContactRef], dict[str, list[ContactRef]], dict[str, list[ContactRef]]]


CONTACT_COLUMNS = (
    Contact.id,
    Contact.occurred_at,
    Contact.number,
    Contact.person_id,
    Contact.household_id,
    Contact.incident_type,
    Contact.victim,
    Contact.domestic_abuse,
    Contact.outcome,
    Contact.call_id,
    Contact.caller_role,
)


async def contacts_for(
    session: Reader,
    *,
    number: str | None,
    person_ids: list[str],
    household_ids: list[str],
    since: datetime,
) -> Contacts:
    """Recent contacts of the number, of each person and of each household (newest first).

    One query, an OR of three indexed conditions (a bitmap OR on PostgreSQL), capped so that
    a switchboard number cannot make one lookup read its whole history."""
    numbers = [number] if number is not None else []
    rows = await contact_rows(session, numbers, person_ids, household_ids, since, MAX_CONTACTS)
    return sort_contacts(rows, number, person_ids, household_ids)


async def contact_rows(
    session: Reader,
    numbers: list[str],
    person_ids: list[str],
    household_ids: list[str],
    since: datetime,
    limit: int,
) -> list[Any]:
    """Contacts since `since` of any of the numbers, persons or households, newest first."""
    if not (numbers or person_ids or household_ids):
        return []
    query = contact_query(bool(numbers), bool(person_ids), bool(household_ids))
    params = {
        "numbers": numbers,
        "person_ids": person_ids,
        "household_ids": household_ids,
        "since": since,
        "limit": limit,
    }
    return await fixed_rows(session, query, params)


# The queries are built once per shape (which of the three conditions apply) and reused with
# expanding parameters: building one per lookup (its clauses and their cache key) cost as much
# CPU as running it (0.16 ms of 0.31, issue 19). The SQL sent is what it was.
_CONTACT_QUERIES: dict[tuple[bool, bool, bool], Any] = {}


def contact_query(numbers: bool, persons: bool, households: bool) -> Any:
    """`contact_rows`' query for that shape (which of its id lists are non-empty)."""
    key = (numbers, persons, households)
    query = _CONTACT_QUERIES.get(key)
    if query is None:
        conditions: list[ColumnElement[bool]] = []
        if numbers:
            conditions.append(Contact.number.in_(bindparam("numbers", expanding=True)))
        if persons:
            conditions.append(Contact.person_id.in_(bindparam("person_ids", expanding=True)))
        if households:
            conditions.append(Contact.household_id.in_(bindparam("household_ids", expanding=True)))
        since = bindparam("since", type_=Contact.occurred_at.type)
        query = _CONTACT_QUERIES[key] = (
            select(*CONTACT_COLUMNS)
            .where(or_(*conditions), Contact.occurred_at >= since)
            .order_by(Contact.occurred_at.desc(), Contact.id)
            .limit(bindparam("limit", type_=Integer))
        )
    return query


def sort_contacts(
    rows: list[Any], number: str | None, person_ids: list[str], household_ids: list[str]
) -> Contacts:
    """One summary's contacts from `rows` (newest first): the number's, and each person's and
    household's, at most MAX_CONTACTS of them in all."""
    by_number: list[ContactRef] = []
    by_person: dict[str, list[ContactRef]] = defaultdict(list)
    by_household: dict[str, list[ContactRef]] = defaultdict(list)
    persons, households = set(person_ids), set(household_ids)
    kept = 0
    for row in rows:
        if kept >= MAX_CONTACTS:
            break
        cid, occurred_at, num, person_id, household_id, incident, victim, da, outcome, call, by = (
            row
        )
        mine_number = number is not None and num == number
        mine_person = person_id is not None and person_id in persons
        mine_household = household_id is not None and household_id in households
        if not (mine_number or mine_person or mine_household):
            continue
        kept += 1
        ref = ContactRef(
            id=cid,
            occurred_at=occurred_at,
            incident_type=incident,
            victim=bool(victim),
            domestic_abuse=bool(da),
            person_id=person_id,
            household_id=household_id,
            outcome=outcome,
            call_id=call,
        )
        if mine_number:
            # A third party's call about someone else (issue 13): the number made the call,
            # but the victim and the abuse are someone else's, never the number's own.
            third_party = by == THIRD_PARTY and (victim or da)
            by_number.append(
                ref.model_copy(update={"victim": False, "domestic_abuse": False})
                if third_party
                else ref
            )
        if mine_person:
            by_person[person_id].append(ref)
        if mine_household:
            by_household[household_id].append(ref)
    return by_number, by_person, by_household


async def markers_for(
    session: AsyncSession, person_ids: list[str], household_ids: list[str]
) -> tuple[dict[str, list[MarkerRef]], dict[str, list[MarkerRef]]]:
    """Every marker (active and expired) of the persons and households, newest first."""
    by_person: dict[str, list[MarkerRef]] = defaultdict(list)
    by_household: dict[str, list[MarkerRef]] = defaultdict(list)
    if not (person_ids or household_ids):
        return by_person, by_household
    rows = await fixed_rows(
        session,
        _marker_query(bool(person_ids), bool(household_ids)),
        {"person_ids": person_ids, "household_ids": household_ids},
    )
    for m in rows:
        ref = marker_ref(m.id, kind=m.kind, subject_type=m.subject_type,
                         subject_id=m.subject_id, set_at=m.set_at, expires_at=m.expires_at,
                         set_by=m.set_by)  # fmt: skip
        (by_person if ref.subject_type == "person" else by_household)[m.subject_id].append(ref)
    return by_person, by_household


def marker_ref(
    id_: str,
    *,
    kind: str,
    subject_type: str,
    subject_id: str,
    set_at: datetime,
    expires_at: datetime | None,
    set_by: str | None,
) -> MarkerRef:
    return MarkerRef(
        id=id_,
        kind=kind,
        subject_type="person" if subject_type == "person" else "household",
        subject_id=subject_id,
        set_at=set_at,
        expires_at=expires_at,
        set_by=set_by,
    )


def marker_select(persons: bool, households: bool) -> Any:
    """The markers of the persons (`person_ids`) and households (`household_ids`), unordered:
    whichever of the two lists the shape has."""
    conditions: list[ColumnElement[bool]] = []
    for wanted, kind, name in ((persons, "person", "person_ids"),
                               (households, "household", "household_ids")):  # fmt: skip
        if wanted:
            ids = Marker.subject_id.in_(bindparam(name, expanding=True))
            conditions.append(and_(Marker.subject_type == kind, ids))
    return select(
        Marker.id,
        Marker.kind,
        Marker.subject_type,
        Marker.subject_id,
        Marker.set_at,
        Marker.expires_at,
        Marker.set_by,
    ).where(or_(*conditions))


_MARKER_QUERIES: dict[tuple[bool, bool], Any] = {}


def _marker_query(persons: bool, households: bool) -> Any:
    """Built once per shape, as `_contact_query`."""
    key = (persons, households)
    query = _MARKER_QUERIES.get(key)
    if query is None:
        query = _MARKER_QUERIES[key] = marker_select(persons, households).order_by(
            Marker.set_at.desc(), Marker.id
        )
    return query


async def contacts_many(
    session: Reader, links: dict[str, Links], since: datetime
) -> dict[str, Contacts]:
    """`contacts_for` of each number's summary, from one query over all of them. Each keeps
    its newest MAX_CONTACTS; if the one query had to stop short, an older contact could be
    missing from any of them, so each is then read on its own."""
    numbers = list(links)
    persons = sorted({p for link in links.values() for p in link.person_ids})
    households = sorted({h for link in links.values() for h in link.household_ids})
    limit = MAX_CONTACTS * len(numbers)
    rows = await contact_rows(session, numbers, persons, households, since, limit)
    return await contacts_from(session, links, since, rows)


async def contacts_from(
    session: Reader, links: dict[str, Links], since: datetime, rows: list[Any]
) -> dict[str, Contacts]:
    """`contacts_many` from the rows its query read (newest first, capped at MAX_CONTACTS
    per number: read with other rows by `store.build_many`)."""
    numbers = list(links)
    limit = MAX_CONTACTS * len(numbers)
    if len(rows) >= limit:
        return {
            n: await contacts_for(
                session,
                number=n,
                person_ids=link.person_ids,
                household_ids=link.household_ids,
                since=since,
            )  # fmt: skip
            for n, link in links.items()
        }
    # Each row to the summaries it belongs to (in order, newest first), in one pass.
    lookups: dict[tuple[int, str], list[str]] = defaultdict(list)
    for n, link in links.items():
        lookups[(0, n)].append(n)
        for p in link.person_ids:
            lookups[(1, p)].append(n)
        for h in link.household_ids:
            lookups[(2, h)].append(n)
    mine: dict[str, list[Any]] = {n: [] for n in numbers}
    for row in rows:
        _, _, num, person_id, household_id, *_ = row
        owners = set(lookups.get((0, num), ()))
        owners.update(lookups.get((1, person_id), ()))
        owners.update(lookups.get((2, household_id), ()))
        for n in owners:
            mine[n].append(row)
    return {
        n: sort_contacts(mine[n], n, link.person_ids, link.household_ids)
        for n, link in links.items()
    }
