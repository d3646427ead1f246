"""Where a call's contact is filed (issue 13 point 4): under the linked victim (person and
household) and the incident's location, with the caller recorded as caller. A neighbour who
reports domestic abuse next door three times must not become a repeat DA victim on their own
number: the contact goes to the neighbour's household and the caller is a `third_party`.

With nobody linked as victim the contact goes where it always did: to the caller (a person
linked as caller, else the only person on the number) and their only current household.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.history.models import CallSubject
from app.history.store_links import all_rows, households_of_persons

VICTIM = "victim"
THIRD_PARTY = "third_party"


@dataclass(frozen=True)
class Attribution:
    """The contact's subject (person, household), who called, and whether a victim was
    linked (then the contact is a victim contact whatever the caller ticked)."""

    person_id: str | None
    household_id: str | None
    caller_person_id: str | None
    caller_role: str | None
    victim_linked: bool


def single_caller(context: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The person and household a number's contact can be attributed to: only when the
    number names exactly one person with at most one current household."""
    if not context:
        return None, None
    callers = [p for p in context["persons"] if p["relationship"] == "caller"]
    if len(callers) != 1:
        return None, None
    homes = callers[0]["household_ids"]
    return callers[0]["id"], homes[0] if len(homes) == 1 else None


async def links_of(session: AsyncSession, call_id: int) -> list[Any]:
    """The call's links (role, subject type, subject id), in the order they were made: a Core
    read, so the pipeline's pending rows are not flushed early by it (on `ended`)."""
    return await all_rows(
        session,
        select(CallSubject.role, CallSubject.subject_type, CallSubject.subject_id)
        .where(CallSubject.call_id == call_id)
        .order_by(CallSubject.id),
    )


async def _only_home(session: AsyncSession, person_id: str, today: date) -> str | None:
    homes = (await households_of_persons(session, [person_id], today)).get(person_id, [])
    return homes[0] if len(homes) == 1 else None


async def attribute(
    session: AsyncSession, call_id: int, context: dict[str, Any] | None, today: date
) -> Attribution:
    """Decide where the call's contact goes, from its links and its caller context."""
    links = await links_of(session, call_id)

    def first(role: str, subject_type: str) -> str | None:
        for link in links:
            if link.role == role and link.subject_type == subject_type:
                return str(link.subject_id)
        return None

    number_person, number_home = single_caller(context)
    caller = first("caller", "person") or number_person
    victim_person = first(VICTIM, "person")
    victim_home = first(VICTIM, "household")
    if victim_person is None and victim_home is None:
        if caller is None:
            return Attribution(None, None, None, None, victim_linked=False)
        home = number_home if caller == number_person else await _only_home(session, caller, today)
        return Attribution(caller, home, caller, None, victim_linked=False)
    # The location: the victim's household if linked, else a household linked as the
    # subject of the call (where it happened), else the victim's only current household.
    location = victim_home or first("subject", "household")
    if location is None and victim_person is not None:
        location = await _only_home(session, victim_person, today)
    role = VICTIM if caller is not None and caller == victim_person else THIRD_PARTY
    return Attribution(victim_person, location, caller, role, victim_linked=True)
