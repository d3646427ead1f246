"""Summaries rebuilt from the store (the cache's miss path). Every query here is served by an
index on the subject and time, so its cost follows the caller's own history, not the table's."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    bindparam,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.history.models import Household, Person
from app.history.store_links import Links, fixed_rows, member_relationships, number_links_many
from app.history.store_records import Contacts, contacts_for, contacts_many, markers_for
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
    people, homes, markers = await _subjects(session, [links])
    contacts = await contacts_for(
        session, number=None, person_ids=links.person_ids, household_ids=household_ids,
        since=since,
    )  # fmt: skip
    return _assemble(None, since, links, people, homes, contacts, markers)


async def build_many(
    session: AsyncSession,
    numbers: list[str],
    *,
    today: date,
    since: datetime,
    links: dict[str, Links] | None = None,
) -> dict[str, Summary]:
    """`build` for many numbers in five queries whatever their count (links, people,
    households, markers, contacts), each summary as `build` gives it alone. `links`: the
    numbers' links already read (`versions_and_links`), in the same transaction."""
    wanted = list(dict.fromkeys(numbers))
    if not wanted:
        return {}
    if links is None or any(n not in links for n in wanted):
        links = await number_links_many(session, wanted, today)
    people, homes, markers = await _subjects(session, list(links.values()))
    contacts = await contacts_many(session, links, since)
    return {n: _assemble(n, since, links[n], people, homes, contacts[n], markers) for n in wanted}


# Built once (see store_records._contact_query).
_PEOPLE = select(Person.id, Person.name, Person.date_of_birth).where(
    Person.id.in_(bindparam("ids", expanding=True))
)
_HOMES = select(
    Household.id, Household.uprn, Household.address, Household.easting, Household.northing
).where(Household.id.in_(bindparam("ids", expanding=True)))


async def _subjects(
    session: AsyncSession, links: list[Links]
) -> tuple[dict[str, Any], dict[str, Any], tuple[dict[str, list[MarkerRef]], ...]]:
    """People, households and markers of every summary, one query each."""
    person_ids = sorted({p for link in links for p in link.person_ids})
    household_ids = sorted({h for link in links for h in link.household_ids})
    people = (
        {p.id: p for p in await fixed_rows(session, _PEOPLE, {"ids": person_ids})}
        if person_ids
        else {}
    )
    homes = (
        {h.id: h for h in await fixed_rows(session, _HOMES, {"ids": household_ids})}
        if household_ids
        else {}
    )
    return people, homes, await markers_for(session, person_ids, household_ids)


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
