"""Linking a person or household to a call mid-call (issue 13 point 3), history's side: store
the link (once: linking the same subject in the same role again changes nothing), run the
alert rules on the linked subject exactly as on a caller (the same summaries, the same pure
engine) and store the alerts the call does not carry yet. Who may link, and pushing the new
alerts, are the caller's business (app.thrive.identify).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call
from app.db import upsert_for, utcnow
from app.errors import NotFound
from app.history import alerts as alert_store
from app.history.consultation import log_consultation
from app.history.context import build_context
from app.history.lookup import horizon_start, household_summary
from app.history.models import Alert, CallSubject, Household, Person
from app.history.store import build
from app.history.store_links import households_of_persons
from app.history.write_back import refile_contact
from app.resources import Resources
from app.rules.facts import CallerFacts, ContactRef

log = logging.getLogger(__name__)


class UnknownPerson(NotFound):
    code = "unknown_person"


class UnknownHousehold(NotFound):
    code = "unknown_household"


@dataclass
class Linked:
    """The link (new or as it already was) and the alerts it raised (none if not new)."""

    link: CallSubject
    created: bool
    alerts: list[Alert] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)


async def _require_subject(session: AsyncSession, subject_type: str, subject_id: str) -> None:
    if subject_type == "person":
        if await session.get(Person, subject_id) is None:
            raise UnknownPerson("no such person", details={"person_id": subject_id})
    elif await session.get(Household, subject_id) is None:
        raise UnknownHousehold("no such household", details={"household_id": subject_id})


async def subject_facts(
    session: AsyncSession, resources: Resources, subject_type: str, subject_id: str
) -> CallerFacts:
    """The rule engine's input for a linked subject: a person as a caller would be (their
    current households and those households' members), or a household and its members."""
    now = utcnow()
    horizon = alert_store.horizon_days(resources)
    if subject_type == "household":
        summary, _ = await household_summary(
            session,
            resources.cache,
            subject_id,
            now=now,
            horizon_days=horizon,
            ttl_seconds=resources.settings.history_cache_ttl_seconds,
        )
    else:
        today = now.astimezone(UTC).date()
        homes = (await households_of_persons(session, [subject_id], today)).get(subject_id, [])
        summary = await build(
            session,
            number=None,
            caller_ids=[subject_id],
            household_ids=homes,
            today=today,
            since=horizon_start(now, horizon),
        )
    # "allowed": the subject was identified, so the withheld-number alert does not apply to
    # them (the call already carries it if it was withheld).
    return CallerFacts(
        now=now,
        presentation="allowed",
        persons=summary.persons,
        households=summary.households,
        horizon_days=horizon,
    )


def _without_call(facts: CallerFacts, call_id: int) -> CallerFacts:
    """This call's own contact (written back if it has ended) is not a prior contact."""

    def keep(contacts: list[ContactRef]) -> list[ContactRef]:
        return [c for c in contacts if c.call_id != call_id]

    return facts.model_copy(
        update={
            "persons": [p.model_copy(update={"contacts": keep(p.contacts)}) for p in facts.persons],
            "households": [
                h.model_copy(update={"contacts": keep(h.contacts)}) for h in facts.households
            ],
        }
    )


async def link_subject(
    session: AsyncSession,
    resources: Resources,
    *,
    call: Call,
    subject_type: str,
    subject_id: str,
    role: str,
    staff_id: str,
    actor: str,
) -> Linked:
    """Link a person or household to the call in a role; on a new link, plan the alerts for
    the subject and store those the call does not already carry (same kind and title), and
    file the call's contact again if it has been written (wrap-up)."""
    await _require_subject(session, subject_type, subject_id)
    values = {
        "call_id": call.id,
        "role": role,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "linked_by": staff_id,
        "linked_at": utcnow(),
    }
    inserted = await session.execute(
        upsert_for(session, CallSubject)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=[
                CallSubject.call_id,
                CallSubject.subject_type,
                CallSubject.subject_id,
                CallSubject.role,
            ]
        )
    )
    created = bool(getattr(inserted, "rowcount", 0))
    link = await session.scalar(
        select(CallSubject).where(
            CallSubject.call_id == call.id,
            CallSubject.subject_type == subject_type,
            CallSubject.subject_id == subject_id,
            CallSubject.role == role,
        )
    )
    assert link is not None  # inserted above, or there already
    if not created:
        return Linked(link=link, created=False)
    facts = _without_call(
        await subject_facts(session, resources, subject_type, subject_id), call.id
    )
    planned = alert_store.plan(resources, facts)
    carried = {(a.kind, a.title) for a in await alert_store.for_call(session, call.id)}
    new = [a for a in planned if (a.kind, a.title) not in carried]
    rows = alert_store.store(session, call.id, new)
    await session.flush()
    if alert_store.flags_call(new) and not call.flagged:
        await session.execute(update(Call).where(Call.id == call.id).values(flagged=True))
    context = build_context(facts)
    # Running the rules read the subject's records: a consultation, for this call.
    log_consultation(
        session, context, actor=actor, call_id=call.id, justification=f"linked as {role}"
    )
    await refile_contact(session, call.id)
    log.info(
        "subject linked",
        extra={"call_id": call.id, "role": role, "alerts": [a.kind for a in new]},
    )
    return Linked(link=link, created=True, alerts=rows, context=context)
