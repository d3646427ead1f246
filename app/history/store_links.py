"""Who a summary shows, from the store: the persons on a number, their current households and
those households' members (and the household search). Each query is served by an index."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

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

from app import db_direct as direct
from app.db_direct import Reader
from app.history.models import Household, PersonHousehold, Phone


async def all_rows(
    session: AsyncSession, query: Any, params: dict[str, Any] | None = None
) -> list[Any]:
    """Rows of a Core query on the session's connection: the ORM layer costs more than the
    query on the ring -> screen path, and these are plain columns."""
    conn = await session.connection()
    return list(await conn.execute(query, params or {}))


async def fixed_rows(session: Reader, query: Any, params: dict[str, Any]) -> list[Any]:
    """`all_rows` for a query built once (a module constant, or one per shape kept in a
    module's dict): on PostgreSQL straight through asyncpg (app.db_direct, which keeps each
    such query compiled; never pass it one built per call)."""
    return await direct.rows(session, query, params)


def current_on(model: Any, today: date | BindParameter[Any]) -> ColumnElement[bool]:
    return and_(
        or_(model.from_date.is_(None), model.from_date <= today),
        or_(model.to_date.is_(None), model.to_date >= today),
    )


async def numbers_of_persons(session: AsyncSession, person_ids: Iterable[str]) -> set[str]:
    ids = sorted(set(person_ids))
    if not ids:
        return set()
    rows = await all_rows(session, select(Phone.e164).where(Phone.person_id.in_(ids)))
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
        query = query.where(current_on(PersonHousehold, today))
    for key, value in await all_rows(session, query):
        result[key].append(value)
    return result


async def member_relationships(
    session: AsyncSession, household_ids: Iterable[str], today: date
) -> tuple[dict[str, list[str]], dict[tuple[str, str], str]]:
    """household id -> current member ids (in link order), and (household, person) -> the
    member's relationship to the household's reference person where one is recorded."""
    ids = sorted(set(household_ids))
    members: dict[str, list[str]] = defaultdict(list)
    relationships: dict[tuple[str, str], str] = {}
    if not ids:
        return members, relationships
    query = (
        select(
            PersonHousehold.household_id,
            PersonHousehold.person_id,
            PersonHousehold.relationship,
        )
        .where(PersonHousehold.household_id.in_(ids), current_on(PersonHousehold, today))
        .order_by(PersonHousehold.id)
    )
    for household_id, person_id, relationship in await all_rows(session, query):
        members[household_id].append(person_id)
        if relationship:
            relationships[(household_id, person_id)] = relationship
    return members, relationships


def number_links_selects() -> list[Any]:
    """For the numbers `e164s` on the day `today`: (number, None, person, 0, None) for each
    person currently on a number, and (None, household, person, link id, relationship) for
    each current member of a current household of any of them."""
    e164s = bindparam("e164s", type_=Phone.e164.type, expanding=True)
    today = bindparam("today", type_=Phone.from_date.type)
    home = aliased(PersonHousehold)
    on_numbers = and_(Phone.e164.in_(e164s), current_on(Phone, today))
    callers = select(Phone.person_id).where(on_numbers)
    homes = select(home.household_id).where(home.person_id.in_(callers), current_on(home, today))
    return [
        select(
            Phone.e164,
            null().label("household_id"),
            Phone.person_id,
            literal(0).label("seq"),
            null().label("relationship"),
        ).where(on_numbers),
        select(
            null().label("e164"),
            PersonHousehold.household_id,
            PersonHousehold.person_id,
            PersonHousehold.id,
            PersonHousehold.relationship,
        ).where(PersonHousehold.household_id.in_(homes), current_on(PersonHousehold, today)),
    ]


# Built once: building it (an alias, a union, subqueries) cost more CPU than running it.
_NUMBER_LINKS = union_all(*number_links_selects())


class Links:
    """Who a summary shows: the callers, the current members of each household, and the
    relationships recorded on those memberships ((household, person) -> relationship)."""

    def __init__(
        self,
        caller_ids: list[str],
        members: dict[str, list[str]],
        relationships: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.caller_ids = caller_ids
        self.members = members
        self.relationships = relationships or {}
        self.household_ids = list(members)
        callers = set(caller_ids)
        member_ids = dict.fromkeys(p for ps in members.values() for p in ps if p not in callers)
        self.person_ids = list(dict.fromkeys([*caller_ids, *member_ids]))


async def number_links_many(session: Reader, numbers: list[str], today: date) -> dict[str, Links]:
    """`number_links` of many numbers in one round trip. A caller is a member of each of
    their current households, so a number's households are those listing one of its callers."""
    rows = await fixed_rows(session, _NUMBER_LINKS, {"e164s": numbers, "today": today})
    return links_of(numbers, rows)


def links_of(numbers: list[str], rows: Iterable[Any]) -> dict[str, Links]:
    callers: dict[str, list[str]] = defaultdict(list)
    members: dict[str, list[str]] = defaultdict(list)
    relationships: dict[tuple[str, str], str] = {}
    for e164, household_id, person_id, _, relationship in sorted(
        rows, key=lambda r: (r[1] or "", r[3], r[2], r[0] or "")
    ):
        if household_id is None:
            callers[e164].append(person_id)
        else:
            members[household_id].append(person_id)
            if relationship:
                relationships[(household_id, person_id)] = relationship
    homes_of: dict[str, set[str]] = defaultdict(set)
    for household_id, person_ids in members.items():
        for person_id in person_ids:
            homes_of[person_id].add(household_id)
    out = {}
    for number in numbers:
        ids = callers.get(number, [])
        homes = sorted({h for c in ids for h in homes_of.get(c, ())})
        out[number] = Links(
            ids,
            {h: members[h] for h in homes},
            {k: v for k, v in relationships.items() if k[0] in homes},
        )
    return out


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
