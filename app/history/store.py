"""Summaries rebuilt from the store (the cache's miss path). Every query here is served by an
index on the subject and time, so its cost follows the caller's own history, not the table's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from app.history.models import Contact, Household, Marker, Person, PersonHousehold, Phone
from app.rules.facts import ContactRef, HouseholdFacts, MarkerRef, PersonFacts

# A pathological subject (a switchboard number, a hostel) must not make one lookup read
# thousands of rows: the most recent contacts are enough for every rule window.
MAX_CONTACTS = 1000


class Summary(BaseModel):
    """What the cache holds for a number (or a set of households): the facts of everyone
    involved, time-independent apart from `since` (markers keep their dates; the engine decides
    what is active at the moment of the call)."""

    number: str | None = None
    since: datetime
    number_contacts: list[ContactRef] = Field(default_factory=list)
    persons: list[PersonFacts] = Field(default_factory=list)
    households: list[HouseholdFacts] = Field(default_factory=list)


async def _all(
    session: AsyncSession, query: Any, params: dict[str, Any] | None = None
) -> list[Any]:
    """Rows of a Core query on the session's connection: the ORM layer costs more than the
    query on the ring -> screen path, and these are plain columns."""
    conn = await session.connection()
    return list(await conn.execute(query, params or {}))


def _current(model: Any, today: date | BindParameter[Any]) -> ColumnElement[bool]:
    return and_(
        or_(model.from_date.is_(None), model.from_date <= today),
        or_(model.to_date.is_(None), model.to_date >= today),
    )


async def persons_on_number(session: AsyncSession, e164: str, today: date) -> list[str]:
    rows = await _all(
        session,
        select(Phone.person_id)
        .where(Phone.e164 == e164, _current(Phone, today))
        .order_by(Phone.person_id),
    )
    return [r[0] for r in rows]


async def numbers_of_persons(session: AsyncSession, person_ids: Iterable[str]) -> set[str]:
    ids = sorted(set(person_ids))
    if not ids:
        return set()
    rows = await _all(session, select(Phone.e164).where(Phone.person_id.in_(ids)))
    return {r[0] for r in rows}


async def households_of_persons(
    session: AsyncSession, person_ids: Iterable[str], today: date | None = None
) -> dict[str, list[str]]:
    """person id -> household ids (current links only when `today` is given)."""
    return await _memberships(
        session, PersonHousehold.person_id, PersonHousehold.household_id, person_ids, today
    )


async def members_of_households(
    session: AsyncSession, household_ids: Iterable[str], today: date | None = None
) -> dict[str, list[str]]:
    """household id -> person ids (current links only when `today` is given)."""
    return await _memberships(
        session, PersonHousehold.household_id, PersonHousehold.person_id, household_ids, today
    )


async def _memberships(
    session: AsyncSession,
    by: InstrumentedAttribute[str],
    other: InstrumentedAttribute[str],
    keys: Iterable[str],
    today: date | None,
) -> dict[str, list[str]]:
    """One side of person_household -> the other, in link order."""
    ids = sorted(set(keys))
    result: dict[str, list[str]] = defaultdict(list)
    if not ids:
        return result
    query = select(by, other).where(by.in_(ids)).order_by(PersonHousehold.id)
    if today is not None:
        query = query.where(_current(PersonHousehold, today))
    for key, value in await _all(session, query):
        result[key].append(value)
    return result


def _number_links_query() -> Any:
    """In one round trip, for the numbers `e164s` on the day `today`: (number, None, person,
    0) for each person currently on a number, and (None, household, person, link id) for each
    current member of a current household of any of them."""
    e164s = bindparam("e164s", type_=Phone.e164.type, expanding=True)
    today = bindparam("today", type_=Phone.from_date.type)
    home = aliased(PersonHousehold)
    on_numbers = and_(Phone.e164.in_(e164s), _current(Phone, today))
    callers = select(Phone.person_id).where(on_numbers)
    homes = select(home.household_id).where(home.person_id.in_(callers), _current(home, today))
    return union_all(
        select(
            Phone.e164,
            null().label("household_id"),
            Phone.person_id,
            literal(0).label("seq"),
        ).where(on_numbers),
        select(
            null().label("e164"),
            PersonHousehold.household_id,
            PersonHousehold.person_id,
            PersonHousehold.id,
        ).where(PersonHousehold.household_id.in_(homes), _current(PersonHousehold, today)),
    )


# Built once: building it (an alias, a union, subqueries) cost more CPU than running it.
_NUMBER_LINKS = _number_links_query()


_CONTACT_COLUMNS = (
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
)


async def contacts_for(
    session: AsyncSession,
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
    rows = await _contact_rows(session, numbers, person_ids, household_ids, since, MAX_CONTACTS)
    return _sort_contacts(rows, number, person_ids, household_ids)


async def _contact_rows(
    session: AsyncSession,
    numbers: list[str],
    person_ids: list[str],
    household_ids: list[str],
    since: datetime,
    limit: int,
) -> list[Any]:
    """Contacts since `since` of any of the numbers, persons or households, newest first."""
    conditions: list[ColumnElement[bool]] = []
    if numbers:
        conditions.append(Contact.number.in_(numbers))
    if person_ids:
        conditions.append(Contact.person_id.in_(person_ids))
    if household_ids:
        conditions.append(Contact.household_id.in_(household_ids))
    if not conditions:
        return []
    query = (
        select(*_CONTACT_COLUMNS)
        .where(or_(*conditions), Contact.occurred_at >= since)
        .order_by(Contact.occurred_at.desc(), Contact.id)
        .limit(limit)
    )
    return await _all(session, query)


def _sort_contacts(
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
        cid, occurred_at, num, person_id, household_id, incident, victim, da, outcome, call = row
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
            by_number.append(ref)
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
    conditions = []
    if person_ids:
        conditions.append(and_(Marker.subject_type == "person", Marker.subject_id.in_(person_ids)))
    if household_ids:
        conditions.append(
            and_(Marker.subject_type == "household", Marker.subject_id.in_(household_ids))
        )
    if not conditions:
        return by_person, by_household
    rows = await _all(
        session,
        select(
            Marker.id,
            Marker.kind,
            Marker.subject_type,
            Marker.subject_id,
            Marker.set_at,
            Marker.expires_at,
            Marker.set_by,
        )
        .where(or_(*conditions))
        .order_by(Marker.set_at.desc(), Marker.id),
    )
    for marker in rows:
        ref = MarkerRef(
            id=marker.id,
            kind=marker.kind,
            subject_type="person" if marker.subject_type == "person" else "household",
            subject_id=marker.subject_id,
            set_at=marker.set_at,
            expires_at=marker.expires_at,
            set_by=marker.set_by,
        )
        target = by_person if marker.subject_type == "person" else by_household
        target[marker.subject_id].append(ref)
    return by_person, by_household


async def build(
    session: AsyncSession,
    *,
    number: str | None,
    caller_ids: list[str],
    household_ids: list[str],
    today: date,
    since: datetime,
) -> Summary:
    """Assemble the facts of the callers, their current households and the other members."""
    if number is not None:
        return (await build_many(session, [number], today=today, since=since))[number]
    members = await members_of_households(session, household_ids, today)
    links = _Links(caller_ids, {h: members.get(h, []) for h in household_ids})
    people, homes, markers = await _subjects(session, [links])
    contacts = await contacts_for(
        session, number=None, person_ids=links.person_ids, household_ids=household_ids,
        since=since,
    )  # fmt: skip
    return _assemble(None, since, links, people, homes, contacts, markers)


class _Links:
    """Who a summary shows: the callers, and the current members of each household."""

    def __init__(self, caller_ids: list[str], members: dict[str, list[str]]) -> None:
        self.caller_ids = caller_ids
        self.members = members
        self.household_ids = list(members)
        callers = set(caller_ids)
        member_ids = dict.fromkeys(p for ps in members.values() for p in ps if p not in callers)
        self.person_ids = list(dict.fromkeys([*caller_ids, *member_ids]))


async def build_many(
    session: AsyncSession, numbers: list[str], *, today: date, since: datetime
) -> dict[str, Summary]:
    """`build` for many numbers in five queries whatever their count (links, people,
    households, markers, contacts), each summary as `build` gives it alone."""
    wanted = list(dict.fromkeys(numbers))
    if not wanted:
        return {}
    links = await _number_links_many(session, wanted, today)
    people, homes, markers = await _subjects(session, list(links.values()))
    contacts = await _contacts_many(session, links, since)
    return {n: _assemble(n, since, links[n], people, homes, contacts[n], markers) for n in wanted}


async def _number_links_many(
    session: AsyncSession, numbers: list[str], today: date
) -> dict[str, _Links]:
    """`number_links` of many numbers in one round trip. A caller is a member of each of
    their current households, so a number's households are those listing one of its callers."""
    rows = await _all(session, _NUMBER_LINKS, {"e164s": numbers, "today": today})
    callers: dict[str, list[str]] = defaultdict(list)
    members: dict[str, list[str]] = defaultdict(list)
    for e164, household_id, person_id, _ in sorted(
        rows, key=lambda r: (r[1] or "", r[3], r[2], r[0] or "")
    ):
        if household_id is None:
            callers[e164].append(person_id)
        else:
            members[household_id].append(person_id)
    homes_of: dict[str, set[str]] = defaultdict(set)
    for household_id, person_ids in members.items():
        for person_id in person_ids:
            homes_of[person_id].add(household_id)
    out = {}
    for number in numbers:
        ids = callers.get(number, [])
        homes = sorted({h for c in ids for h in homes_of.get(c, ())})
        out[number] = _Links(ids, {h: members[h] for h in homes})
    return out


async def _subjects(
    session: AsyncSession, links: list[_Links]
) -> tuple[dict[str, Any], dict[str, Any], tuple[dict[str, list[MarkerRef]], ...]]:
    """People, households and markers of every summary, one query each."""
    person_ids = sorted({p for link in links for p in link.person_ids})
    household_ids = sorted({h for link in links for h in link.household_ids})
    people = (
        {
            p.id: p
            for p in await _all(
                session,
                select(Person.id, Person.name, Person.date_of_birth).where(
                    Person.id.in_(person_ids)
                ),
            )
        }
        if person_ids
        else {}
    )
    homes = (
        {
            h.id: h
            for h in await _all(
                session,
                select(Household.id, Household.uprn, Household.address).where(
                    Household.id.in_(household_ids)
                ),
            )
        }
        if household_ids
        else {}
    )
    return people, homes, await markers_for(session, person_ids, household_ids)


Contacts = tuple[list[ContactRef], dict[str, list[ContactRef]], dict[str, list[ContactRef]]]


async def _contacts_many(
    session: AsyncSession, links: dict[str, _Links], since: datetime
) -> dict[str, Contacts]:
    """`contacts_for` of each number's summary, from one query over all of them. Each keeps
    its newest MAX_CONTACTS; if the one query had to stop short, an older contact could be
    missing from any of them, so each is then read on its own."""
    numbers = list(links)
    persons = sorted({p for link in links.values() for p in link.person_ids})
    households = sorted({h for link in links.values() for h in link.household_ids})
    limit = MAX_CONTACTS * len(numbers)
    rows = await _contact_rows(session, numbers, persons, households, since, limit)
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
        n: _sort_contacts(mine[n], n, link.person_ids, link.household_ids)
        for n, link in links.items()
    }


def _assemble(
    number: str | None,
    since: datetime,
    links: _Links,
    people: dict[str, Any],
    homes: dict[str, Any],
    contacts: Contacts,
    markers: tuple[dict[str, list[MarkerRef]], ...],
) -> Summary:
    number_contacts, contacts_by_person, contacts_by_household = contacts
    markers_by_person, markers_by_household = markers
    callers = set(links.caller_ids)
    persons = []
    for person_id in links.person_ids:
        row = people.get(person_id)
        persons.append(
            PersonFacts(
                id=person_id,
                name=row.name if row else None,
                date_of_birth=row.date_of_birth.isoformat() if row and row.date_of_birth else None,
                relationship="caller" if person_id in callers else "household_member",
                household_ids=[h for h in links.household_ids if person_id in links.members[h]],
                contacts=contacts_by_person.get(person_id, []),
                markers=markers_by_person.get(person_id, []),
            )
        )
    households = [
        HouseholdFacts(
            id=household_id,
            uprn=homes[household_id].uprn if household_id in homes else None,
            address=homes[household_id].address if household_id in homes else None,
            member_ids=links.members.get(household_id, []),
            contacts=contacts_by_household.get(household_id, []),
            markers=markers_by_household.get(household_id, []),
        )
        for household_id in links.household_ids
    ]
    return Summary(
        number=number,
        since=since,
        number_contacts=number_contacts,
        persons=persons,
        households=households,
    )


async def find_households(
    session: AsyncSession,
    *,
    household_id: str | None = None,
    uprn: str | None = None,
    address: str | None = None,
    limit: int = 20,
) -> list[str]:
    """Household ids matching what a handler typed mid-call (exact id or UPRN; address by
    case-insensitive substring)."""
    query = select(Household.id).order_by(Household.id).limit(limit)
    if household_id is not None:
        query = query.where(Household.id == household_id)
    if uprn is not None:
        query = query.where(Household.uprn == uprn)
    if address is not None:
        escaped = address.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Household.address.ilike(f"%{escaped}%", escape="\\"))
    return list(await session.scalars(query))
