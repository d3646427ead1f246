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
from app.errors import NotFound
from app.history import writes
from app.history.models import CallContext, Contact
from app.history.tx_state import tx_of


def _single_caller(context: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The person and household a write-back contact can be attributed to: only when the
    number names exactly one person with at most one current household."""
    if not context:
        return None, None
    callers = [p for p in context["persons"] if p["relationship"] == "caller"]
    if len(callers) != 1:
        return None, None
    homes = callers[0]["household_ids"]
    return callers[0]["id"], homes[0] if len(homes) == 1 else None


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
    person_id, household_id = _single_caller(await _context_of(session, call_id))
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
    return await writes.record_contact(
        session,
        contact_id=contact.id,
        occurred_at=contact.occurred_at,
        number=contact.number,
        person_id=contact.person_id,
        household_id=contact.household_id,
        incident_type=incident_type,
        victim=victim,
        domestic_abuse=domestic_abuse,
        outcome=outcome,
        call_id=call_id,
    )


async def requalify_contact(session: AsyncSession, call_id: int, domestic_abuse: bool) -> bool:
    """The call's contact, if already written (the call ended, or was assessed), takes the DA
    flag its qualifiers now give; caches see it on the next lookup. False: no contact yet
    (the write-back at the end of the call reads the qualifiers itself)."""
    contact = await writes.contact_for_call(session, call_id)
    if contact is None:
        return False
    if contact.domestic_abuse != domestic_abuse:
        await writes.record_contact(
            session,
            contact_id=contact.id,
            occurred_at=contact.occurred_at,
            number=contact.number,
            person_id=contact.person_id,
            household_id=contact.household_id,
            incident_type=contact.incident_type,
            victim=contact.victim,
            domestic_abuse=domestic_abuse,
            outcome=contact.outcome,
            call_id=call_id,
        )
    return True
