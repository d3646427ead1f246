"""The history step of the call pipeline, and what the realtime and THRIVE+ domains read.

On offered/ringing (once per call): look the caller up, plan alerts, store alerts and context
on the call, flag it, log the consultation, and leave `ctx.facts["context"]` and
`ctx.facts["alerts"]` for the realtime step. On ended: write a contact back for the call, so the
next call from the number (or household) sees it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.calls.models import Call
from app.db import utcnow
from app.errors import NotFound
from app.history import alerts as alert_store
from app.history import writes
from app.history.context import build_context, shown_records
from app.history.lookup import lookup_caller
from app.history.models import Alert, CallContext, Contact
from app.resources import Resources
from app.rules.facts import CallerFacts, ContactRef
from app.telephony.events import EventType

if TYPE_CHECKING:  # the pipeline imports this module to register the step
    from app.calls.pipeline import StepContext

log = logging.getLogger(__name__)

ARRIVAL = frozenset({EventType.offered, EventType.ringing})


_KNOWN = "history_known_contexts"

StoredContext = tuple[dict[str, Any], list[dict[str, Any]]]


def _known(session: AsyncSession) -> dict[int, StoredContext]:
    """Contexts built or read in the session's current transaction, by call id: the other
    events of a batch (ringing after offered, ended) reuse them rather than read them back.
    The call row is locked for the whole transaction, so nobody else changes them meanwhile."""
    tx = session.sync_session.get_transaction()
    held = session.info.get(_KNOWN)
    if held is None or held[0] is not tx:
        held = session.info[_KNOWN] = (tx, {})
    known: dict[int, StoredContext] = held[1]
    return known


async def history_step(ctx: StepContext) -> None:
    """Pipeline step: caller context and alerts on arrival, contact write-back on end."""
    if ctx.event.type in ARRIVAL:
        context, alerts = await prepare_call(
            ctx.session,
            ctx.resources,
            call_id=ctx.call.id,
            number=ctx.call.caller_e164,
            presentation=ctx.call.presentation,
            first_event=ctx.first_event,
        )
        ctx.facts["context"] = context
        ctx.facts["alerts"] = alerts
    elif ctx.event.type == EventType.ended:
        await write_back(
            ctx.session,
            call_id=ctx.call.id,
            number=ctx.call.caller_e164,
            occurred_at=ctx.call.offered_at or ctx.event.occurred_at,
        )


async def caller_facts_for(
    session: AsyncSession, resources: Resources, number: str | None, presentation: str
) -> CallerFacts:
    settings = resources.settings
    return await lookup_caller(
        session,
        resources.cache,
        number,
        presentation,
        now=utcnow(),
        horizon_days=alert_store.horizon_days(resources),
        ttl_seconds=settings.history_cache_ttl_seconds,
    )


async def prepare_call(
    session: AsyncSession,
    resources: Resources,
    *,
    call_id: int,
    number: str | None,
    presentation: str,
    first_event: bool = False,
) -> StoredContext:
    """Build, store and return a call's context and alerts; a second call returns what the
    first stored (ringing after offered, a retried event). `first_event`: the call's first
    event is being ingested in this transaction, so nothing can be stored yet."""
    known = _known(session)
    if call_id in known:
        return known[call_id]
    stored = None if first_event else await stored_context(session, call_id)
    if stored is not None:
        known[call_id] = stored
        return stored
    facts = _without_call(await caller_facts_for(session, resources, number, presentation), call_id)
    planned = alert_store.plan(resources, facts)
    context = build_context(facts)
    session.add(CallContext(call_id=call_id, context=context, looked_up_at=facts.now))
    rows = await alert_store.store(session, call_id, planned)
    if alert_store.flags_call(planned):
        await session.execute(update(Call).where(Call.id == call_id).values(flagged=True))
    log_consultation(session, context, actor=f"call:{call_id}", call_id=call_id)
    log.info(
        "caller context built",
        extra={
            "call_id": call_id,
            "persons": len(context["persons"]),
            "households": len(context["households"]),
            "alerts": [a.kind for a in planned],
        },
    )
    built = context, [alert_store.as_dict(r) for r in rows]
    known[call_id] = built
    return built


def _without_call(facts: CallerFacts, call_id: int) -> CallerFacts:
    """Drop this call's own write-back contact (an `ended` processed before `offered`): a call
    is not its own prior contact."""

    def keep(contacts: list[ContactRef]) -> list[ContactRef]:
        return [c for c in contacts if c.call_id != call_id]

    if not any(c.call_id == call_id for c in facts.number_contacts):
        return facts
    return facts.model_copy(
        update={
            "number_contacts": keep(facts.number_contacts),
            "persons": [p.model_copy(update={"contacts": keep(p.contacts)}) for p in facts.persons],
            "households": [
                h.model_copy(update={"contacts": keep(h.contacts)}) for h in facts.households
            ],
        }
    )


def log_consultation(
    session: AsyncSession,
    context: dict[str, Any],
    *,
    actor: str,
    call_id: int | None,
    justification: str | None = None,
) -> None:
    """One audit record per person and household shown, naming the records shown."""
    shown = shown_records(context)
    subjects = [("person", p) for p in context["persons"]] + [
        ("household", h) for h in context["households"]
    ]
    for subject_type, item in subjects:
        audit.record(
            session,
            actor=actor,
            action="consultation",
            subject_type=subject_type,
            subject_id=item["id"],
            call_id=str(call_id) if call_id is not None else None,
            justification=justification,
            records={
                "contacts": [c["id"] for c in item["contacts"]],
                "markers": [m["id"] for m in item["markers"]],
            },
        )
    if shown["contacts"] and not subjects:
        # Contacts from the number that name nobody known: still a consultation.
        audit.record(
            session,
            actor=actor,
            action="consultation",
            subject_type="number_history",
            call_id=str(call_id) if call_id is not None else None,
            justification=justification,
            records={"contacts": shown["contacts"]},
        )


async def stored_context(
    session: AsyncSession, call_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The context and alerts stored for a call, or None before its lookup ran. The realtime
    domain delivers them when the call rings at a desk."""
    # One round trip for both (this runs on every ringing, on the ring -> screen path).
    rows = (await session.execute(_STORED_CONTEXT, {"call_id": call_id})).all()
    if not rows:
        return None
    alerts = [alert_store.as_dict(r) for r in rows if r.id is not None]
    return dict(rows[0].stored_context), alerts


_STORED_CONTEXT = (
    select(
        CallContext.context.label("stored_context"),
        Alert.id,
        Alert.kind,
        Alert.severity,
        Alert.title,
        Alert.reasons,
        Alert.evidence,
        Alert.rule,
        Alert.tags,
        Alert.suggested_grade,
        Alert.raised_at,
        Alert.acknowledged_at,
        Alert.acknowledged_by,
    )
    .select_from(CallContext)
    .outerjoin(Alert, Alert.call_id == CallContext.call_id)
    .where(CallContext.call_id == bindparam("call_id"))
    .order_by(Alert.id)
)


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
    session: AsyncSession, *, call_id: int, number: str | None, occurred_at: datetime
) -> Contact:
    """Record the contact of an ended call (idempotent: an existing one is kept as it is)."""
    contact_id = f"call-{call_id}"
    # One read for both: the call's contact, and any contact already under the id it gets.
    found = (
        await session.scalars(
            select(Contact).where(or_(Contact.call_id == call_id, Contact.id == contact_id))
        )
    ).all()
    for existing in found:
        if existing.call_id == call_id:
            return existing
    known = _known(session).get(call_id)
    if known is not None:
        context: dict[str, Any] | None = known[0]
    else:
        stored = await session.get(CallContext, call_id)
        context = stored.context if stored else None
    person_id, household_id = _single_caller(context)
    return await writes.record_contact(
        session,
        contact_id=contact_id,
        occurred_at=occurred_at,
        number=number,
        person_id=person_id,
        household_id=household_id,
        call_id=call_id,
        absent=not found,
    )


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


async def lookup_households_for_handler(
    session: AsyncSession,
    resources: Resources,
    *,
    call_id: int,
    actor: str,
    household_id: str | None,
    uprn: str | None,
    address: str | None,
) -> list[dict[str, Any]]:
    """The households a handler typed mid-call (id, UPRN or address), as screen contexts;
    every one shown is logged as consulted for that call."""
    from app.history.lookup import household_summary
    from app.history.store import find_households

    settings = resources.settings
    now = utcnow()
    ids = await find_households(session, household_id=household_id, uprn=uprn, address=address)
    contexts = []
    for hid in ids:
        summary, _ = await household_summary(
            session,
            resources.cache,
            hid,
            now=now,
            horizon_days=alert_store.horizon_days(resources),
            ttl_seconds=settings.history_cache_ttl_seconds,
        )
        facts = CallerFacts(
            now=now,
            presentation="allowed",
            persons=summary.persons,
            households=summary.households,
            horizon_days=alert_store.horizon_days(resources),
        )
        context = build_context(facts)
        log_consultation(
            session, context, actor=actor, call_id=call_id, justification="mid-call lookup"
        )
        contexts.append(context)
    return contexts
