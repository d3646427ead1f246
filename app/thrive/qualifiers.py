"""Qualifiers on a call (domestic_abuse, hate_crime with its strands, child_involved,
adult_at_risk, weapons), independent of its incident type: set by the call's current handler
or a supervisor while the call is live or in wrap-up.

They are stored on the call (`call.qualifiers`), their prompts and advice merge with the
incident type's (pushed as `prompts.updated` / `advice.updated`, as setting the incident type
does), and the domestic-abuse qualifier makes the call's contact a DA contact (DA escalation
counts it): at the end of the call (`app.history.write_back`), at the assessment, and here
when the contact is already written (a change in wrap-up).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls import qualifiers
from app.calls import service as calls
from app.calls.models import Call
from app.db import utcnow
from app.errors import Conflict
from app.history.write_back import requalify_contact
from app.resources import Resources
from app.rules import guidance
from app.thrive import catalogue
from app.thrive.models import Assessment, CallThrive
from app.thrive.reads import call_alerts, call_cues, rules_of
from app.thrive.schemas import CallThriveRead, QualifiersSet
from app.thrive.service import NotCallHandler, late_alerts, publish_guidance, view_of

log = logging.getLogger(__name__)

LIVE = frozenset({"offered", "ringing", "answered", "transferred"})
# How long after its end a call is in wrap-up: the handler screen's wrap-up list
# (app.web.screens.WRAP_UP_WINDOW) keeps an ended call for as long.
WRAP_UP = timedelta(hours=12)


class CallClosed(Conflict):
    status, code = 409, "call_closed"


async def call_for_qualifiers(session: AsyncSession, call_id: int, principal: Principal) -> Call:
    """The call, if `principal` may set its qualifiers now: its current handler or a
    supervisor (403), while it is live or in wrap-up (409 after that)."""
    call = await calls.get_call(session, call_id)
    if not policy.allows_on(principal, Capability.qualify_call, call):
        raise NotCallHandler(
            "only the call's current handler or a supervisor may set its qualifiers"
        )
    if call.state not in LIVE:
        ended = call.ended_at
        if ended is None or utcnow() - ended > WRAP_UP:
            raise CallClosed(
                "the call's wrap-up is over: qualifiers can be set while the call is live or "
                f"within {int(WRAP_UP.total_seconds() // 3600)} hours of its end"
            )
    return call


async def _incident_type(session: AsyncSession, call_id: int) -> str | None:
    """The call's incident type: the latest assessment's, else the one set during the call."""
    assessed = await session.scalar(
        select(Assessment.incident_type)
        .where(Assessment.call_id == call_id)
        .order_by(Assessment.version.desc())
        .limit(1)
    )
    if assessed is not None:
        return assessed
    state = await session.get(CallThrive, call_id)
    return state.incident_type if state is not None else None


async def set_qualifiers(
    session: AsyncSession,
    resources: Resources,
    call_id: int,
    body: QualifiersSet,
    principal: Principal,
) -> CallThriveRead:
    """Store the call's qualifiers (all of them: what is not listed is taken off), push the
    merged prompts and advice, and keep the call's contact's DA flag in step."""
    call = await call_for_qualifiers(session, call_id, principal)
    rules = rules_of(resources)
    # 422 `invalid_qualifiers` with every problem ({field, reason}) unless the packs know them.
    stored = guidance.check_qualifiers(rules, body.qualifiers, body.qualifier_strands)
    before = call.qualifiers
    call.qualifiers = qualifiers.stored_form(stored)
    call.updated_at = utcnow()
    await session.flush()
    incident_type = await _incident_type(session, call.id)
    await requalify_contact(
        session,
        call.id,
        qualifiers.is_domestic_abuse(call.qualifiers)
        or (incident_type is not None and catalogue.is_domestic_abuse(incident_type)),
    )
    # Rules that read what the call is (MARAC repeat on a DA call) may hold now.
    await late_alerts(session, resources, call, incident_type, principal)
    audit.record(
        session,
        actor=principal.actor,
        action="collection" if before is None else "alteration",
        subject_type="call_qualifiers",
        subject_id=str(call.id),
        call_id=str(call.id),
        records={"call": call.id, "qualifiers": call.qualifiers},
    )
    view = view_of(
        resources,
        call,
        await session.get(CallThrive, call.id),
        await call_alerts(session, call.id),
        await call_cues(session, call.id),
    )
    publish_guidance(session, resources, call, view)
    # Counts only: which qualifiers a call carries (domestic abuse, hate crime) is sensitive.
    log.info("qualifiers set", extra={"call": call.id, "qualifiers": len(stored)})
    return view
