"""`firstcontact erase --person P1`: one person removed or pseudonymised everywhere.

Removed: the person, their phones, memberships, markers and links to calls. Pseudonymised:
the contacts filed under them (or naming them as the caller) keep counting in statistics under
a random id that nothing else holds, without their number. Their own numbers (those no other
person holds: a shared number identifies the other person too) are taken off calls and
contacts. The calls that involve them keep their record without the person (erase_calls).
Every cached summary becomes unreachable. One audit row records the erasure: who, when, how
many rows per table, never what they held.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Delete, Update

from app.audit import service as audit
from app.errors import NotFound
from app.history import versions
from app.history.models import (
    CallSubject,
    Contact,
    HistoryVersion,
    Marker,
    Person,
    PersonHousehold,
    Phone,
)
from app.retention.erase_calls import linked_calls, scrub_calls
from app.retention.scrub import Subject


class UnknownPerson(NotFound):
    status, code = 404, "unknown_person"


async def erase_person(
    session: AsyncSession, person_id: str, *, actor: str, region: str = "GB"
) -> dict[str, int]:
    """Erase `person_id` in the session's transaction; rows changed per table (`region`:
    where numbers typed without a country code are read, DEFAULT_REGION)."""
    subject = await _subject(session, person_id, region)
    rows: dict[str, int] = {}
    calls = await linked_calls(session, subject)
    rows["calls"] = len(calls)
    rows["call_records"] = await scrub_calls(session, subject, calls)
    rows["contacts"] = await _pseudonymise_contacts(session, subject)
    rows["markers"] = await _delete(
        session,
        delete(Marker).where((Marker.subject_type == "person") & (Marker.subject_id == person_id)),
    )
    rows["call_subjects"] = await _delete(
        session,
        delete(CallSubject).where(
            (CallSubject.subject_type == "person") & (CallSubject.subject_id == person_id)
        ),
    )
    rows["memberships"] = await _delete(
        session, delete(PersonHousehold).where(PersonHousehold.person_id == person_id)
    )
    rows["phones"] = await _delete(session, delete(Phone).where(Phone.person_id == person_id))
    rows["persons"] = await _delete(session, delete(Person).where(Person.id == person_id))
    # The cache: every summary key carries the global generation, so bumping it makes each
    # cached summary (in-process or Redis, any worker) unreachable; the counters named after
    # the person's numbers go too (they hold the number).
    await versions.bump(session, [versions.EVERYTHING])
    scopes = [versions.number_scope(n) for n in sorted(subject.numbers)]
    if scopes:
        await session.execute(delete(HistoryVersion).where(HistoryVersion.scope.in_(scopes)))
    audit.record(
        session,
        actor=actor,
        action="erasure",
        subject_type="person",
        subject_id=person_id,
        justification="erasure of a person's data",
        records={"rows": rows},
    )
    return rows


async def _subject(session: AsyncSession, person_id: str, region: str) -> Subject:
    person = await session.get(Person, person_id)
    if person is None:
        raise UnknownPerson("no person with that id", {"person_id": person_id})
    own = set((await session.scalars(select(Phone.e164).where(Phone.person_id == person_id))).all())
    shared = set(
        (
            await session.scalars(
                select(Phone.e164).where(Phone.e164.in_(own) & (Phone.person_id != person_id))
            )
        ).all()
    )
    return Subject(
        person_id=person_id,
        pseudonym="erased-" + secrets.token_hex(8),
        numbers=frozenset(own - shared),
        name=person.name,
        region=region,
    )


async def _pseudonymise_contacts(session: AsyncSession, subject: Subject) -> int:
    changed = 0
    for column in (Contact.person_id, Contact.caller_person_id):
        changed += await _update(
            session,
            update(Contact).where(column == subject.person_id).values({column: subject.pseudonym}),
        )
    if subject.numbers:
        changed += await _update(
            session,
            update(Contact).where(Contact.number.in_(sorted(subject.numbers))).values(number=None),
        )
    return changed


async def _update(session: AsyncSession, statement: Update | Delete) -> int:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


_delete = _update
