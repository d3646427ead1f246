"""Alert rules run again for a live call once the handler says what the call is.

At ring time nothing is known of the call itself, so a rule that reads `this_call` ("this call
is domestic abuse", MARAC repeat) cannot hold. When the incident type (or a qualifier) is set,
the rules run again on the caller's history with that known; alerts of kinds the call does not
carry yet are stored and returned for the caller to push (`alert.raised`). Alerts already on
the call stay as they are: the handler has seen them, and may have acknowledged them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import Call
from app.history import alerts as alert_store
from app.history import steps
from app.history.consultation import log_consultation
from app.history.context import build_context
from app.history.models import Alert
from app.resources import Resources
from app.rules.facts import CallFacts

log = logging.getLogger(__name__)


async def rerun_alerts(
    session: AsyncSession,
    resources: Resources,
    call: Call,
    *,
    incident_type: str | None,
    qualifiers: Sequence[str] = (),
    actor: str,
) -> list[Alert]:
    """The alerts newly raised for `call` now that its incident type / qualifiers are known
    (stored and flushed, so they have ids); the call is flagged if one of them flags it. The
    history read is logged as a consultation for the call, as the ring-time one is."""
    facts = await steps.caller_facts_for(session, resources, call.caller_e164, call.presentation)
    facts = steps.without_call(facts, call.id).model_copy(
        update={"call": CallFacts(incident_type=incident_type, qualifiers=list(qualifiers))}
    )
    planned = alert_store.plan(resources, facts)
    carried = {a.kind for a in await alert_store.for_call(session, call.id)}
    fresh = [a for a in planned if a.kind not in carried]
    if not fresh:
        return []
    rows = alert_store.store(session, call.id, fresh)
    await session.flush()
    if alert_store.flags_call(fresh) and not call.flagged:
        await session.execute(update(Call).where(Call.id == call.id).values(flagged=True))
    log_consultation(
        session,
        build_context(facts),
        actor=actor,
        call_id=call.id,
        justification="alert rules run again: the call's incident type or qualifiers changed",
    )
    log.info("alerts raised late", extra={"call_id": call.id, "alerts": [a.kind for a in fresh]})
    return rows
