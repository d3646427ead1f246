"""History writes. Each one bumps, in the same transaction, the generation counter of every
summary it changes, so the next lookup anywhere rebuilds rather than reads a stale summary."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.db import utcnow
from app.history import store_links, versions
from app.history.models import Contact, Household, Marker


async def invalidate(
    session: AsyncSession,
    *,
    numbers: Iterable[str | None] = (),
    person_ids: Iterable[str | None] = (),
    household_ids: Iterable[str | None] = (),
) -> set[str]:
    """Bump every summary that shows any of these numbers, persons or households.

    A number's summary shows its persons, their households and the other members of those
    households, so a change to a person reaches the numbers of everyone they live with. Links
    are followed whatever their dates (a wider invalidation is only a cache miss)."""
    await session.flush()  # the link queries below read through the connection
    persons = {p for p in person_ids if p}
    homes = {h for h in household_ids if h}
    for linked in (await store_links.households_of_persons(session, persons)).values():
        homes.update(linked)
    for members in (await store_links.members_of_households(session, homes)).values():
        persons.update(members)
    nums = {n for n in numbers if n} | await store_links.numbers_of_persons(session, persons)
    scopes = {versions.number_scope(n) for n in nums} | {versions.household_scope(h) for h in homes}
    await versions.bump(session, scopes)
    return scopes


async def locate_contacts(
    session: AsyncSession,
    *,
    contact_ids: Iterable[str] | None = None,
    household_ids: Iterable[str] | None = None,
) -> None:
    """Copy households' coordinates and grid cell onto their contacts (near repeat reads
    contacts by cell): those of `contact_ids` and of `household_ids`; with neither, every
    contact whose household has coordinates that differ from the contact's (after an import).
    """
    home: Any = Household.__table__
    place = {
        column: select(home.c[column]).where(home.c.id == Contact.household_id).scalar_subquery()
        for column in ("easting", "northing", "grid_cell")
    }
    where: ColumnElement[bool]
    if contact_ids is None and household_ids is None:
        located = select(home.c.id).where(home.c.grid_cell.is_not(None))
        where = Contact.household_id.in_(located) & or_(
            Contact.easting.is_distinct_from(place["easting"]),
            Contact.northing.is_distinct_from(place["northing"]),
        )
    else:
        ids, homes = sorted(set(contact_ids or ())), sorted(set(household_ids or ()))
        if not ids and not homes:
            return
        where = or_(Contact.id.in_(ids), Contact.household_id.in_(homes))
    await session.execute(
        update(Contact)
        .where(where)
        .values(easting=place["easting"], northing=place["northing"], grid_cell=place["grid_cell"])
        .execution_options(synchronize_session=False)
    )


def contact_row(
    *,
    contact_id: str,
    occurred_at: datetime,
    number: str | None,
    person_id: str | None,
    household_id: str | None,
    call_id: int | None,
    victim: bool = False,
    caller_person_id: str | None = None,
    caller_role: str | None = None,
    domestic_abuse: bool = False,
) -> dict[str, Any]:
    """A new contact's columns (no other has `contact_id`), for a writer that inserts many at
    once (`CONTACT`) and invalidates their number, person and household itself before its
    transaction commits (the history step does, once for a batch)."""
    return {
        "id": contact_id,
        "occurred_at": occurred_at,
        "number": number,
        "person_id": person_id,
        "household_id": household_id,
        "incident_type": None,
        "victim": victim,
        # The call's domestic-abuse qualifier, when it ends carrying one.
        "domestic_abuse": domestic_abuse,
        "outcome": None,
        "caller_person_id": caller_person_id,
        "caller_role": caller_role,
        "call_id": call_id,
        "updated_at": utcnow(),
    }


CONTACT: Table = Contact.__table__  # type: ignore[assignment]


async def record_contact(
    session: AsyncSession,
    *,
    contact_id: str,
    occurred_at: datetime,
    number: str | None = None,
    person_id: str | None = None,
    household_id: str | None = None,
    incident_type: str | None = None,
    victim: bool = False,
    domestic_abuse: bool = False,
    outcome: str | None = None,
    call_id: int | None = None,
    caller_person_id: str | None = None,
    caller_role: str | None = None,
    absent: bool = False,
) -> Contact:
    """Create or update one contact and invalidate the summaries that show it (old and new
    subjects alike, when an update moves it). `caller_person_id` / `caller_role`: who called,
    when the contact is filed under someone else (app.history.attribution). `absent`: the
    caller has just read, in this transaction, that no contact has `contact_id` (saves reading
    it again)."""
    contact = None if absent else await session.get(Contact, contact_id)
    before: tuple[str | None, str | None, str | None] = (None, None, None)
    if contact is None:
        contact = Contact(id=contact_id, occurred_at=occurred_at)
        session.add(contact)
    else:
        before = (contact.number, contact.person_id, contact.household_id)
    contact.occurred_at = occurred_at
    contact.number = number
    contact.person_id = person_id
    contact.household_id = household_id
    contact.incident_type = incident_type
    contact.victim = victim
    contact.domestic_abuse = domestic_abuse
    contact.outcome = outcome
    contact.caller_person_id = caller_person_id
    contact.caller_role = caller_role
    contact.call_id = call_id
    contact.updated_at = utcnow()
    await session.flush()
    if household_id is not None or before[2] is not None:
        await locate_contacts(session, contact_ids=[contact_id])
    await invalidate(
        session,
        numbers=(number, before[0]),
        person_ids=(person_id, before[1]),
        household_ids=(household_id, before[2]),
    )
    return contact


async def set_marker(
    session: AsyncSession,
    *,
    marker_id: str,
    subject_type: str,
    subject_id: str,
    kind: str,
    set_at: datetime,
    expires_at: datetime | None = None,
    set_by: str | None = None,
) -> Marker:
    """Create or update a marker on a person or household (expiring it is an update)."""
    marker = await session.get(Marker, marker_id)
    previous: tuple[str, str] | None = None
    if marker is None:
        marker = Marker(id=marker_id)
        session.add(marker)
    else:
        previous = (marker.subject_type, marker.subject_id)
    marker.subject_type = subject_type
    marker.subject_id = subject_id
    marker.kind = kind
    marker.set_at = set_at
    marker.expires_at = expires_at
    marker.set_by = set_by
    await session.flush()
    subjects = [(subject_type, subject_id)] + ([previous] if previous else [])
    await invalidate(
        session,
        person_ids=[s for t, s in subjects if t == "person"],
        household_ids=[s for t, s in subjects if t == "household"],
    )
    return marker


async def contact_for_call(session: AsyncSession, call_id: int) -> Contact | None:
    return (await session.scalars(select(Contact).where(Contact.call_id == call_id))).one_or_none()
