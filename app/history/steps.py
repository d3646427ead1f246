"""The history step of the call pipeline, and what the realtime and THRIVE+ domains read.

On offered/ringing (once per call): look the caller up, plan alerts, store alerts and context
on the call, flag it, log the consultation, and leave `ctx.facts["context"]` and
`ctx.facts["alerts"]` for the realtime step. On ended: write a contact back for the call, so the
next call from the number (or household) sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.models import AuditLog
from app.calls.models import Call
from app.db import utcnow
from app.errors import NotFound
from app.history import alerts as alert_store
from app.history import store, writes
from app.history.context import build_context, shown_records
from app.history.lookup import caller_facts, horizon_start, lookup_caller, number_summaries
from app.history.models import Alert, CallContext, Contact
from app.history.store import Summary
from app.resources import Resources
from app.rules.facts import CallerFacts, ContactRef
from app.telephony.events import EventType

if TYPE_CHECKING:  # the pipeline imports this module to register the step
    from app.calls.pipeline import StepContext

log = logging.getLogger(__name__)

ARRIVAL = frozenset({EventType.offered, EventType.ringing})
CONTEXT: Table = CallContext.__table__  # type: ignore[assignment]

# A call's context and its alerts: dicts once stored; an alert added in this transaction is
# its row until the history step finishes (its id comes with the flush).
StoredContext = tuple[dict[str, Any], list[Any]]


@dataclass
class _Tx:
    """What the history step holds for one processing transaction (a batch of events, or one).

    Read ahead for all its events at once (`prepare`), written once at the end (`finish`):
    contexts, alerts, audit records and contacts are flushed together, and the summaries the
    new contacts change are invalidated together. The call rows are locked for the whole
    transaction, so nobody else changes what is held here meanwhile."""

    known: dict[int, StoredContext] = field(default_factory=dict)  # by call id
    summaries: dict[str, Summary] = field(default_factory=dict)  # read ahead, by number
    contacts_read: set[int] = field(default_factory=set)  # calls whose contacts were read
    with_contact: set[int] = field(default_factory=set)  # calls that have their contact
    contact_ids: set[str] = field(default_factory=set)  # contact ids already taken
    # Written here and not yet invalidated: a summary that shows any of these is rebuilt
    # from the store (after a flush) rather than read ahead or from the cache.
    numbers: set[str] = field(default_factory=set)
    persons: set[str] = field(default_factory=set)
    households: set[str] = field(default_factory=set)
    flag: set[int] = field(default_factory=set)  # calls to flag
    # Rows to insert with one statement per table (Core: many rows cost a fraction of as
    # many ORM objects): contexts, consultation records, write-back contacts.
    rows: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)

    def add_row(self, table: Table, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)

    def shows_pending(self, summary: Summary) -> bool:
        """Whether a write of this transaction (not yet invalidated) changes `summary`: it
        shows the number, a person or a household written to."""
        if not (self.numbers or self.persons or self.households):
            return False
        return (
            summary.number in self.numbers
            or any(p.id in self.persons for p in summary.persons)
            or any(h.id in self.households for h in summary.households)
        )


_TX = "history_tx"


def _tx(session: AsyncSession) -> _Tx:
    """The history step's state for the session's current transaction (a new one per
    transaction: a rolled-back attempt leaves nothing behind)."""
    tx = session.sync_session.get_transaction()
    held = session.info.get(_TX)
    if held is None or held[0] is not tx:
        held = session.info[_TX] = (tx, _Tx())
    state: _Tx = held[1]
    return state


class HistoryStep:
    """Pipeline step: caller context and alerts on arrival, contact write-back on end."""

    async def prepare(self, ctxs: Sequence[StepContext]) -> None:
        """Read what the events will need in a few statements for all of them: the contexts
        already stored for their calls, the callers' summaries, the contacts of ending calls."""
        if not ctxs:
            return
        session, resources = ctxs[0].session, ctxs[0].resources
        tx = _tx(session)
        new_calls = {c.call.id for c in ctxs if c.first_event}
        involved = {
            c.call.id for c in ctxs if c.event.type in ARRIVAL or c.event.type == EventType.ended
        }
        tx.known.update(
            await stored_contexts(session, sorted(involved - new_calls - set(tx.known)))
        )
        numbers = {
            c.call.caller_e164
            for c in ctxs
            if c.event.type in ARRIVAL
            and c.call.id not in tx.known
            and c.call.caller_e164 is not None
            and c.call.presentation == "allowed"
        }
        if numbers:
            tx.summaries.update(
                await number_summaries(
                    session,
                    resources.cache,
                    sorted(numbers),
                    now=utcnow(),
                    horizon_days=alert_store.horizon_days(resources),
                    ttl_seconds=resources.settings.history_cache_ttl_seconds,
                )
            )
        ending = sorted({c.call.id for c in ctxs if c.event.type == EventType.ended})
        if ending:
            rows = await session.execute(
                select(Contact.id, Contact.call_id).where(
                    or_(
                        Contact.call_id.in_(ending),
                        Contact.id.in_([f"call-{i}" for i in ending]),
                    )
                )
            )
            tx.contacts_read.update(ending)
            for contact_id, call_id in rows:
                tx.contact_ids.add(contact_id)
                if call_id is not None:
                    tx.with_contact.add(call_id)

    async def __call__(self, ctx: StepContext) -> None:
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
                deferred=True,
            )

    async def finish(self, ctxs: Sequence[StepContext]) -> None:
        """Write what the events added (one multi-row insert per table), flag the calls,
        invalidate the summaries the new contacts change; give later steps the alerts with
        their ids."""
        if not ctxs:
            return
        session = ctxs[0].session
        await settle(session)
        for ctx in ctxs:
            if "alerts" in ctx.facts:
                ctx.facts["alerts"] = [_alert_dict(a) for a in ctx.facts["alerts"]]


history_step = HistoryStep()


async def settle(session: AsyncSession) -> None:
    """Flush what the history step added in this transaction, flag its calls and invalidate
    the summaries its writes change (in the same transaction, as every history write does)."""
    tx = _tx(session)
    if tx.flag:
        await session.execute(update(Call).where(Call.id.in_(sorted(tx.flag))).values(flagged=True))
        tx.flag.clear()
    await _write_rows(session, tx)
    if tx.numbers or tx.persons or tx.households:
        await writes.invalidate(
            session, numbers=tx.numbers, person_ids=tx.persons, household_ids=tx.households
        )
        tx.numbers, tx.persons, tx.households = set(), set(), set()


async def _write_rows(session: AsyncSession, tx: _Tx) -> None:
    """Flush the session (alerts) and insert the pending rows, one statement per table."""
    await session.flush()
    for table, rows in tx.rows.items():
        if rows:
            await session.execute(insert(table), rows)
    tx.rows.clear()


def _alert_dict(alert: Any) -> dict[str, Any]:
    return alert if isinstance(alert, dict) else alert_store.as_dict(alert)


async def caller_facts_for(
    session: AsyncSession, resources: Resources, number: str | None, presentation: str
) -> CallerFacts:
    settings = resources.settings
    now = utcnow()
    horizon = alert_store.horizon_days(resources)
    if number is not None and presentation == "allowed":
        tx = _tx(session)
        summary = tx.summaries.get(number)
        if summary is None or tx.shows_pending(summary):
            summary = None
            if tx.numbers or tx.persons or tx.households:
                # This transaction wrote to what the caller's summary may show, and has not
                # bumped its counters yet: read the store (with those writes), not the cache.
                await _write_rows(session, tx)
                summary = await store.build(
                    session,
                    number=number,
                    caller_ids=[],
                    household_ids=[],
                    today=now.astimezone(UTC).date(),
                    since=horizon_start(now, horizon),
                )
        if summary is not None:
            return caller_facts(summary, now=now, presentation=presentation, horizon_days=horizon)
    return await lookup_caller(
        session,
        resources.cache,
        number,
        presentation,
        now=now,
        horizon_days=horizon,
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
    event is being ingested in this transaction, so nothing can be stored yet. What it adds
    is flushed by `settle` (the step's `finish`)."""
    tx = _tx(session)
    if call_id in tx.known:
        return tx.known[call_id]
    stored = None if first_event else await stored_context(session, call_id)
    if stored is not None:
        tx.known[call_id] = stored
        return stored
    facts = without_call(await caller_facts_for(session, resources, number, presentation), call_id)
    planned = alert_store.plan(resources, facts)
    context = build_context(facts)
    tx.add_row(CONTEXT, {"call_id": call_id, "context": context, "looked_up_at": facts.now})
    rows: list[Any] = alert_store.store(session, call_id, planned)
    if alert_store.flags_call(planned):
        tx.flag.add(call_id)
    for record in consultations(context, actor=f"call:{call_id}", call_id=call_id):
        tx.add_row(audit.AUDIT, record)
    log.info(
        "caller context built",
        extra={
            "call_id": call_id,
            "persons": len(context["persons"]),
            "households": len(context["households"]),
            "alerts": [a.kind for a in planned],
        },
    )
    built = context, rows
    tx.known[call_id] = built
    return built


def without_call(facts: CallerFacts, call_id: int) -> CallerFacts:
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
    for record in consultations(context, actor=actor, call_id=call_id, justification=justification):
        session.add(AuditLog(**record))


def consultations(
    context: dict[str, Any],
    *,
    actor: str,
    call_id: int | None,
    justification: str | None = None,
) -> list[dict[str, Any]]:
    """The audit records (`audit.row`) of showing `context`: one per person and household
    shown, naming the records shown; the number's own history when it names nobody known."""
    shown = shown_records(context)
    subjects = [("person", p) for p in context["persons"]] + [
        ("household", h) for h in context["households"]
    ]
    call = str(call_id) if call_id is not None else None
    records = [
        audit.row(
            actor=actor,
            action="consultation",
            subject_type=subject_type,
            subject_id=item["id"],
            call_id=call,
            justification=justification,
            records={
                "contacts": [c["id"] for c in item["contacts"]],
                "markers": [m["id"] for m in item["markers"]],
            },
        )
        for subject_type, item in subjects
    ]
    if shown["contacts"] and not subjects:
        # Contacts from the number that name nobody known: still a consultation.
        records.append(
            audit.row(
                actor=actor,
                action="consultation",
                subject_type="number_history",
                call_id=call,
                justification=justification,
                records={"contacts": shown["contacts"]},
            )
        )
    return records


async def stored_context(
    session: AsyncSession, call_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The context and alerts stored for a call, or None before its lookup ran. The realtime
    domain delivers them when the call rings at a desk."""
    return (await stored_contexts(session, [call_id])).get(call_id)


async def stored_contexts(
    session: AsyncSession, call_ids: list[int]
) -> dict[int, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """`stored_context` of many calls, by call id (calls without one are absent)."""
    if not call_ids:
        return {}
    # One round trip for contexts and alerts (this runs on every ringing, on the ring ->
    # screen path, and once per batch).
    found: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for row in await session.execute(_STORED_CONTEXT, {"call_ids": call_ids}):
        held = found.get(row.call_id)
        if held is None:
            held = found[row.call_id] = (dict(row.stored_context), [])
        if row.id is not None:
            held[1].append(alert_store.as_dict(row))
    return found


_STORED_CONTEXT = (
    select(
        CallContext.call_id,
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
    .where(CallContext.call_id.in_(bindparam("call_ids", expanding=True)))
    .order_by(CallContext.call_id, Alert.id)
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
    tx = _tx(session)
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
    fields: dict[str, Any] = {
        "contact_id": contact_id,
        "occurred_at": occurred_at,
        "number": number,
        "person_id": person_id,
        "household_id": household_id,
        "call_id": call_id,
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
    known = _tx(session).known.get(call_id)
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
