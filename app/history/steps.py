"""The history step of the call pipeline (what realtime and THRIVE+ read of it is in
`stored_context`, `consultation` and `write_back`).

On offered/ringing (once per call): look the caller up, plan alerts, store alerts and context
on the call, flag it, log the consultation, and leave `ctx.facts["context"]` and
`ctx.facts["alerts"]` for the realtime step. On ended: write a contact back for the call, so the
next call from the number (or household) sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.calls import qualifiers
from app.calls.models import Call
from app.db import utcnow
from app.db_direct import Direct
from app.history import alerts as alert_store
from app.history import near, store
from app.history.consultation import consultations
from app.history.context import build_context
from app.history.lookup import (
    caller_facts,
    caller_summary_on,
    horizon_start,
    lookup_caller,
    number_summaries,
)
from app.history.models import Alert, CallContext, Contact
from app.history.stored_context import from_reads, stored_context, stored_contexts
from app.history.tx_state import StoredContext, settle, tx_of, write_rows
from app.history.write_back import write_back
from app.resources import Resources
from app.rules.facts import CallerFacts, ContactRef, PlannedAlert
from app.telephony.events import EventType

if TYPE_CHECKING:  # the pipeline imports this module to register the step
    from app.calls.step import ExpressContext, StepContext

log = logging.getLogger(__name__)

ARRIVAL = frozenset({EventType.offered, EventType.ringing})
CONTEXT: Table = CallContext.__table__  # type: ignore[assignment]
ALERT: Table = Alert.__table__  # type: ignore[assignment]
_FACTS = "history.express_facts"  # express_read -> express, for a new call


class HistoryStep:
    """Pipeline step: caller context and alerts on arrival, contact write-back on end."""

    async def prepare(self, ctxs: Sequence[StepContext]) -> None:
        """Read what the events will need in a few statements for all of them: the contexts
        already stored for their calls, the callers' summaries, the contacts of ending calls."""
        if not ctxs:
            return
        session, resources = ctxs[0].session, ctxs[0].resources
        tx = tx_of(session)
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
            # The qualifiers set during the call decide the contact's DA flag.
            qualified = await session.execute(
                select(Call.id, Call.qualifiers).where(
                    Call.id.in_(ending), Call.qualifiers.is_not(None)
                )
            )
            tx.da_calls.update(i for i, q in qualified if qualifiers.is_domestic_abuse(q))
            for contact_id, call_id in rows:
                tx.contact_ids.add(contact_id)
                if call_id is not None:
                    tx.with_contact.add(call_id)

    # The events of a call stored already that may go express (app.calls.express): not
    # `offered` (its lookup, alerts and audit records go in the event's transaction when its
    # call exists: it came after another event) nor `ended` (the write-back).
    express_on = frozenset({EventType.ringing, EventType.answered, EventType.transferred})

    # A call's first event may go express when it is an offered (app.calls.step).
    express_new_on = frozenset({EventType.offered})

    async def express_read(self, ctx: ExpressContext, direct: Direct) -> bool:
        """A new call's caller, looked up outside any transaction: the lookup's first read
        (which selects the call's id along), for a number on a person the cache or else the
        store, then the near-repeat candidates; the alerts planned from that, their ids taken
        ahead (the supervisors' message names them: app.id_blocks). A withheld number is not
        looked up (its id is taken on its own). A number on a person declines unless the
        service is quiet (`ctx.quiet`): under load its lookup costs less in a group, where
        callers share the cache's round trip and the store's statements."""
        call, resources = ctx.call, ctx.resources
        now = utcnow()
        horizon = alert_store.horizon_days(resources)
        summary = None
        if call.caller_e164 is not None and call.presentation == "allowed":
            # The call's id with it, if no read took it yet (one round trip fewer).
            along = ctx.id_sql if ctx.taken_id is None else None
            summary, taken = await caller_summary_on(
                direct, resources.cache, call.caller_e164, now=now, horizon_days=horizon,
                ttl_seconds=resources.settings.history_cache_ttl_seconds, along=along,
                further=ctx.quiet,
            )  # fmt: skip
            if taken is not None:
                ctx.taken_id = taken
            if summary is None:
                return False
        facts = caller_facts(summary, now=now, presentation=call.presentation, horizon_days=horizon)
        facts = await near.with_nearby(direct, facts, alert_store.ruleset(resources).near)
        planned = alert_store.plan(resources, facts)
        ids = await resources.alert_ids.take(direct, len(planned))
        ctx.facts[_FACTS] = facts, planned, ids
        return True

    def _express_new(self, ctx: ExpressContext) -> bool:
        """A new call's context and alerts, planned from `express_read`'s: stored with the
        event, the call flagged with it, the consultation of what it shows appended to the
        audit chain by the same statement (as `prepare_call` does on the locked path)."""
        held: tuple[CallerFacts, list[PlannedAlert], list[int]] | None = ctx.facts.pop(_FACTS, None)
        if held is None:
            return False
        facts, planned, ids = held
        call_id = ctx.call.id
        context = build_context(facts)
        ctx.insert(CONTEXT, [{"call_id": call_id, "context": context, "looked_up_at": facts.now}])
        rows = alert_store.unraised(call_id, planned, list(ids))
        if rows:
            ctx.insert(ALERT, [alert_store.values_with_id(row) for row in rows])

            async def count() -> None:
                alert_store.count(planned)

            ctx.after_write(count)
        ctx.flag_call = ctx.flag_call or alert_store.flags_call(planned)
        ctx.audit_rows += consultations(context, actor=f"call:{call_id}", call_id=call_id)
        ctx.facts["context"] = context
        ctx.facts["alerts"] = [alert_store.as_dict(row) for row in rows]
        return True

    def express(self, ctx: ExpressContext) -> bool:
        """Nothing to write once the call's context is stored: hand it to the later steps as
        `__call__` does. Declines an arrival whose context is not stored yet, or has alerts
        (read in full on the locked path), and every `ended`. A new call: `_express_new`."""
        if ctx.new_call:
            return self._express_new(ctx)
        if ctx.event.type == EventType.ended:
            return False
        if ctx.event.type not in ARRIVAL:
            return True
        known, stored = from_reads(ctx.reads)
        if not known or stored is None:
            return False
        ctx.facts["context"], ctx.facts["alerts"] = stored
        return True

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


def _alert_dict(alert: Any) -> dict[str, Any]:
    return alert if isinstance(alert, dict) else alert_store.as_dict(alert)


async def caller_facts_for(
    session: AsyncSession, resources: Resources, number: str | None, presentation: str
) -> CallerFacts:
    settings = resources.settings
    now = utcnow()
    horizon = alert_store.horizon_days(resources)
    if number is not None and presentation == "allowed":
        tx = tx_of(session)
        summary = tx.summaries.get(number)
        if summary is None or tx.shows_pending(summary):
            summary = None
            if tx.numbers or tx.persons or tx.households:
                # This transaction wrote to what the caller's summary may show, and has not
                # bumped its counters yet: read the store (with those writes), not the cache.
                await write_rows(session, tx)
                summary = await store.build(
                    session,
                    number=number,
                    caller_ids=[],
                    household_ids=[],
                    today=now.astimezone(UTC).date(),
                    since=horizon_start(now, horizon),
                )
        if summary is not None:
            facts = caller_facts(summary, now=now, presentation=presentation, horizon_days=horizon)
            return await near.with_nearby(session, facts, alert_store.ruleset(resources).near)
    return await lookup_caller(
        session,
        resources.cache,
        number,
        presentation,
        now=now,
        horizon_days=horizon,
        ttl_seconds=settings.history_cache_ttl_seconds,
        near=alert_store.ruleset(resources).near,
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
    tx = tx_of(session)
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
    # Inserted by `settle`, with the calls they flag (one statement for the transaction).
    rows: list[Any] = alert_store.raised(call_id, planned)
    tx.alerts += rows
    if alert_store.flags_call(planned):
        tx.flag.add(call_id)
    audit.add_rows(session, consultations(context, actor=f"call:{call_id}", call_id=call_id))
    # DEBUG: one per call, and what it says is stored (the context, the alerts, the audit
    # rows); at INFO it cost as much as the webhook's own routing (issue 19).
    log.debug(
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
