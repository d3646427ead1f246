"""Summaries rebuilt from the store (the cache's miss path). Every query here is served by an
index on the subject and time, so its cost follows the caller's own history, not the table's."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, Field
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    String,
    bindparam,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import UTCDateTime, union_branch
from app.db_direct import Reader
from app.history import store_records
from app.history.models import Household, Marker, Person
from app.history.store_links import Links, fixed_rows, member_relationships, number_links_many
from app.history.store_records import (
    Contacts,
    contact_query,
    contacts_for,
    contacts_from,
    contacts_many,
    marker_ref,
    marker_select,
    sort_contacts,
)
from app.rules.facts import ContactRef, HouseholdFacts, MarkerRef, PersonFacts


class Summary(BaseModel):
    """What the cache holds for a number (or a set of households): the facts of everyone
    involved, time-independent apart from `since` (markers keep their dates; the engine decides
    what is active at the moment of the call)."""

    number: str | None = None
    since: datetime
    number_contacts: list[ContactRef] = Field(default_factory=list)
    persons: list[PersonFacts] = Field(default_factory=list)
    households: list[HouseholdFacts] = Field(default_factory=list)


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
    members, relationships = await member_relationships(session, household_ids, today)
    links = Links(caller_ids, {h: members.get(h, []) for h in household_ids}, relationships)
    people, homes, markers, _ = await _subjects(session, [links])
    contacts = await contacts_for(
        session, number=None, person_ids=links.person_ids, household_ids=household_ids,
        since=since,
    )  # fmt: skip
    return _assemble(None, since, links, people, homes, contacts, markers)


async def build_many(
    session: Reader,
    numbers: list[str],
    *,
    today: date,
    since: datetime,
    links: dict[str, Links] | None = None,
) -> dict[str, Summary]:
    """`build` for many numbers in five queries whatever their count (links, people,
    households, markers, contacts), each summary as `build` gives it alone. `links`: the
    numbers' links already read (`lookup_read.first_read`), in the same transaction."""
    wanted = list(dict.fromkeys(numbers))
    if not wanted:
        return {}
    if links is None or any(n not in links for n in wanted):
        links = await number_links_many(session, wanted, today)
    links = {n: links[n] for n in wanted}
    if any(link.person_ids or link.household_ids for link in links.values()):
        people, homes, markers, rows = await _subjects(
            session, list(links.values()), (wanted, since)
        )
        contacts = await contacts_from(session, links, since, rows)
    else:  # numbers on nobody: their contacts are the whole summary
        people, homes, markers, _ = await _subjects(session, [])
        contacts = await contacts_many(session, links, since)
    return {n: _assemble(n, since, links[n], people, homes, contacts[n], markers) for n in wanted}


# People, households, markers and contacts of a summary in one statement (one round trip,
# not four; issue 19): a UNION ALL of them, each row tagged with its kind, their columns on
# shared positions of one type each. Built once per shape (which of the id lists are
# non-empty, and whether the numbers' contacts are read with them).
_PERSON, _HOUSEHOLD, _MARKER, _CONTACT = 0, 1, 2, 3


_TEXT, _NUMBER, _DATE, _TIME = String(), Float(), Date(), UTCDateTime()
_FLAG, _INT = Boolean(), BigInteger()
# The shared row: its columns' names and types (a branch leaves NULL what it has not).
_SHAPE = (
    ("id", _TEXT), ("s1", _TEXT), ("s2", _TEXT), ("s3", _TEXT), ("s4", _TEXT),
    ("f1", _NUMBER), ("f2", _NUMBER), ("d1", _DATE), ("t1", _TIME), ("t2", _TIME),
    ("s5", _TEXT), ("s6", _TEXT), ("b1", _FLAG), ("b2", _FLAG), ("n1", _INT),
)  # fmt: skip


def _row(tag: int, query: Any, **columns: Any) -> Any:
    return union_branch(tag, query, _SHAPE, **columns)


def _subjects_query(persons: bool, households: bool, contacts: bool) -> Any:
    key = (persons, households, contacts)
    query = _SUBJECTS.get(key)
    if query is not None:
        return query
    branches = []
    if contacts:
        # `contact_rows`' query (ordered, limited) as a subquery: its rows, newest first.
        c = contact_query(True, persons, households).subquery("recent")
        branches.append(
            _row(_CONTACT, select(c), id=c.c.id, t1=c.c.occurred_at, s1=c.c.number,
                 s2=c.c.person_id, s3=c.c.household_id, s4=c.c.incident_type, b1=c.c.victim,
                 b2=c.c.domestic_abuse, s5=c.c.outcome, n1=c.c.call_id, s6=c.c.caller_role)
        )  # fmt: skip
    if persons:
        wanted = select(Person).where(Person.id.in_(bindparam("person_ids", expanding=True)))
        branches.append(
            _row(_PERSON, wanted, id=Person.id, s1=Person.name, d1=Person.date_of_birth)
        )
    if households:
        homes = select(Household).where(
            Household.id.in_(bindparam("household_ids", expanding=True))
        )
        branches.append(
            _row(_HOUSEHOLD, homes, id=Household.id, s1=Household.uprn,
                    s2=Household.address, f1=Household.easting, f2=Household.northing)
        )  # fmt: skip
    branches.append(
        _row(_MARKER, marker_select(persons, households), id=Marker.id, s1=Marker.kind,
                s2=Marker.subject_type, s3=Marker.subject_id, s4=Marker.set_by,
                t1=Marker.set_at, t2=Marker.expires_at)
    )  # fmt: skip
    union = union_all(*branches)
    # Markers newest first, as `markers_for` gives them (people and homes are keyed by id);
    # contacts newest first, as `contact_rows` gives them.
    columns = union.selected_columns
    query = _SUBJECTS[key] = union.order_by(columns.tag, columns.t1.desc().nulls_last(), columns.id)
    return query


_SUBJECTS: dict[tuple[bool, bool, bool], Any] = {}


async def _subjects(
    session: Reader,
    links: list[Links],
    numbers_since: tuple[list[str], datetime] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], tuple[dict[str, list[MarkerRef]], ...], list[Any]]:
    """People, households and markers of every summary, in one query; with `numbers_since`
    (the summaries' numbers), their contacts as well (`contact_rows`' rows for them, their
    people and households, in its columns' order)."""
    person_ids = sorted({p for link in links for p in link.person_ids})
    household_ids = sorted({h for link in links for h in link.household_ids})
    people: dict[str, Any] = {}
    homes: dict[str, Any] = {}
    by_person: dict[str, list[MarkerRef]] = defaultdict(list)
    by_household: dict[str, list[MarkerRef]] = defaultdict(list)
    contacts: list[Any] = []
    if not (person_ids or household_ids):
        return people, homes, (by_person, by_household), contacts
    params: dict[str, Any] = {"person_ids": person_ids, "household_ids": household_ids}
    if numbers_since is not None:
        numbers, since = numbers_since
        params.update(numbers=numbers, since=since, limit=store_records.MAX_CONTACTS * len(numbers))
    query = _subjects_query(bool(person_ids), bool(household_ids), numbers_since is not None)
    for tag, id_, s1, s2, s3, s4, f1, f2, d1, t1, t2, s5, s6, b1, b2, n1 in await fixed_rows(
        session, query, params
    ):
        if tag == _PERSON:
            people[id_] = _Person(s1, d1)
        elif tag == _HOUSEHOLD:
            homes[id_] = _Home(s1, s2, f1, f2)
        elif tag == _MARKER:
            ref = marker_ref(id_, kind=s1, subject_type=s2, subject_id=s3, set_by=s4,
                             set_at=t1, expires_at=t2)  # fmt: skip
            (by_person if ref.subject_type == "person" else by_household)[s3].append(ref)
        else:  # in store_records.CONTACT_COLUMNS' order
            contacts.append((id_, t1, s1, s2, s3, s4, b1, b2, s5, n1, s6))
    return people, homes, (by_person, by_household), contacts


class _Person(NamedTuple):
    name: str | None
    date_of_birth: date | None


class _Home(NamedTuple):
    uprn: str | None
    address: str | None
    easting: float | None
    northing: float | None


def unlinked_summary(number: str, since: datetime, rows: list[Any]) -> Summary:
    """The summary of a number on no person: its own contacts (`rows`: every one since
    `since`, newest first, in store_records.CONTACT_COLUMNS' order), as `build_many` gives it."""
    contacts = sort_contacts(rows, number, [], [])
    return _assemble(number, since, Links([], {}), {}, {}, contacts, ({}, {}))


def _assemble(
    number: str | None,
    since: datetime,
    links: Links,
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
                relation=None if person_id in callers else relation_to_caller(links, person_id),
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
            easting=homes[household_id].easting if household_id in homes else None,
            northing=homes[household_id].northing if household_id in homes else None,
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


# A member recorded without a relationship is the household's reference person: how they
# relate to a caller recorded with one (a caller who is the reference person's child has the
# reference person as their parent). Relationships with no such inverse are not guessed.
_INVERSE = {
    "partner": "partner",
    "ex_partner": "ex_partner",
    "sibling": "sibling",
    "child": "parent",
    "parent": "child",
}


def relation_to_caller(links: Links, person_id: str) -> str | None:
    """How a household member relates to the caller, from the relationships recorded on
    memberships (each to the household's reference person); None when they do not say."""
    for household_id, member_ids in links.members.items():
        if person_id not in member_ids:
            continue
        mine = links.relationships.get((household_id, person_id))
        for caller_id in links.caller_ids:
            if caller_id not in member_ids:
                continue
            theirs = links.relationships.get((household_id, caller_id))
            if theirs is None and mine is not None:
                return mine  # the caller is the reference person
            if mine is None and theirs is not None:
                return _INVERSE.get(theirs)
            if mine == theirs == "child":
                return "sibling"
    return None
