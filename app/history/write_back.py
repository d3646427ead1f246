"""Write-back: the contact an ended call leaves in the history, and the handler's assessment
added to it, so the next call from the number (or household) sees it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls import qualifiers
from app.calls.models import Call
from app.db import utcnow
from app.errors import NotFound
from app.history import writes
from app.history.attribution import Attribution, attribute
from app.history.models import CallContext, Contact
from app.history.tx_state import tx_of


async def write_back(
    session: AsyncSession,
    *,
    call_id: int,
    number: str | None,
    occurred_at: datetime,
    deferred: bool = False,
) -> Contact | None:
    """Record the contact of an ended call (idempotent: an existing one is kept as it is).

    `deferred` (the pipeline): the new contact is added to the session and its invalidation
    left to `settle`, and None is returned; what `prepare` read ahead saves the queries."""
    tx = tx_of(session)
    contact_id = f"call-{call_id}"
    read_ahead = deferred and call_id in tx.contacts_read
    if read_ahead and call_id in tx.with_contact:
        return None
    found: Sequence[Contact] = ()
    if not read_ahead or contact_id in tx.contact_ids:
        # One read for both: the call's contact, and any contact already under the id it gets
        # (read ahead, only the latter is possible: a contact of no call, from an import).
        found = (
            await session.scalars(
                select(Contact).where(or_(Contact.call_id == call_id, Contact.id == contact_id))
            )
        ).all()
        for existing in found:
            if existing.call_id == call_id:
                return existing
    filed = await _attribution(session, call_id)
    person_id, household_id = filed.person_id, filed.household_id
    if read_ahead:
        domestic_abuse = call_id in tx.da_calls
    else:
        call = await session.get(Call, call_id)
        domestic_abuse = call is not None and qualifiers.is_domestic_abuse(call.qualifiers)
    fields: dict[str, Any] = {
        "contact_id": contact_id,
        "occurred_at": occurred_at,
        "number": number,
        "person_id": person_id,
        "household_id": household_id,
        "call_id": call_id,
        **_filed_fields(filed, victim=False),
        "domestic_abuse": domestic_abuse,
    }
    if not read_ahead:
        return await writes.record_contact(session, **fields, absent=not found)
    if found:  # moved from the contact of no call that held its id: invalidated at once
        await writes.record_contact(session, **fields)
    else:
        tx.add_row(writes.CONTACT, writes.contact_row(**fields))
    tx.with_contact.add(call_id)
    tx.contact_ids.add(contact_id)
    # Pending until `settle`: later lookups in this transaction that show any of these read
    # the store, never the cache (nothing uncommitted may be cached under any version).
    tx.numbers.update([number] if number else [])
    tx.persons.update([person_id] if person_id else [])
    tx.households.update([household_id] if household_id else [])
    return None


async def _attribution(session: AsyncSession, call_id: int) -> Attribution:
    return await attribute(session, call_id, await _context_of(session, call_id), utcnow().date())


def _filed_fields(filed: Attribution, *, victim: bool) -> dict[str, Any]:
    """The victim flag and caller columns of a contact filed by `filed`: a linked victim
    makes it a victim contact; with none linked, the caller is the victim if they said so."""
    caller_role = filed.caller_role
    if not filed.victim_linked and victim and filed.caller_person_id is not None:
        caller_role = "victim"
    return {
        "victim": victim or filed.victim_linked,
        "caller_person_id": filed.caller_person_id,
        "caller_role": caller_role,
    }


async def _context_of(session: AsyncSession, call_id: int) -> dict[str, Any] | None:
    """The call's context: as built or read in this transaction, else as stored."""
    known = tx_of(session).known.get(call_id)
    if known is not None:
        return known[0]
    stored = await session.get(CallContext, call_id)
    return stored.context if stored else None


async def complete_contact(
    session: AsyncSession,
    call_id: int,
    incident_type: str | None,
    victim: bool,
    domestic_abuse: bool,
    outcome: str | None,
) -> Contact:
    """Add the handler's assessment (incident type, victim, DA, outcome) to the call's contact,
    creating it if the call has not ended yet; caches see it on the next lookup."""
    contact = await writes.contact_for_call(session, call_id)
    if contact is None:
        call = await session.get(Call, call_id)
        if call is None:
            raise NotFound("no such call", details={"call_id": call_id})
        contact = await write_back(
            session,
            call_id=call_id,
            number=call.caller_e164,
            occurred_at=call.offered_at or call.created_at,
        )
        assert contact is not None  # not deferred
    # Filed again: links made since the call ended (in wrap-up) move it.
    filed = await _attribution(session, call_id)
    return await writes.record_contact(
        session,
        contact_id=contact.id,
        occurred_at=contact.occurred_at,
        number=contact.number,
        person_id=filed.person_id,
        household_id=filed.household_id,
        incident_type=incident_type,
        domestic_abuse=domestic_abuse,
        outcome=outcome,
        call_id=call_id,
        **_filed_fields(filed, victim=victim),
    )


async def _rewrite(session: AsyncSession, contact: Contact, **changes: Any) -> Contact:
    """Write `contact` again with `changes` over what it holds (the summaries it leaves and
    joins are invalidated by `record_contact`)."""
    fields: dict[str, Any] = {
        "contact_id": contact.id,
        "occurred_at": contact.occurred_at,
        "number": contact.number,
        "person_id": contact.person_id,
        "household_id": contact.household_id,
        "incident_type": contact.incident_type,
        "victim": contact.victim,
        "domestic_abuse": contact.domestic_abuse,
        "outcome": contact.outcome,
        "call_id": contact.call_id,
        "caller_person_id": contact.caller_person_id,
        "caller_role": contact.caller_role,
    }
    return await writes.record_contact(session, **{**fields, **changes})


async def refile_contact(session: AsyncSession, call_id: int) -> Contact | None:
    """File the call's contact again after a link made in wrap-up (the call has ended, so
    its contact exists): what the handler recorded on it stays."""
    contact = await writes.contact_for_call(session, call_id)
    if contact is None:
        return None
    filed = await _attribution(session, call_id)
    caller_said_victim = contact.victim and contact.caller_role in (None, "victim")
    return await _rewrite(
        session,
        contact,
        person_id=filed.person_id,
        household_id=filed.household_id,
        **_filed_fields(filed, victim=caller_said_victim),
    )


async def requalify_contact(session: AsyncSession, call_id: int, domestic_abuse: bool) -> bool:
    """The call's contact, if already written (the call ended, or was assessed), takes the DA
    flag its qualifiers now give; caches see it on the next lookup. False: no contact yet
    (the write-back at the end of the call reads the qualifiers itself)."""
    contact = await writes.contact_for_call(session, call_id)
    if contact is None:
        return False
    if contact.domestic_abuse != domestic_abuse:
        await _rewrite(session, contact, domestic_abuse=domestic_abuse)
    return True
