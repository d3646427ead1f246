"""Identification mid-call (issue 13 point 3): the history search and the linking of a person
or household to the call, for the call's current handler and supervisors, while the call is
live or in wrap-up (ended, assessment not yet submitted). Every search and link is audited;
the alerts a link raises are pushed (`alert.raised`) after the commit.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.cache import limits
from app.calls import service as calls
from app.calls.models import Call
from app.calls.snapshot import snapshot_of
from app.db import utcnow
from app.errors import Conflict, Forbidden
from app.history import alerts as alert_store
from app.history import search as history_search
from app.history import subjects
from app.metrics.catalogue import SEARCHES
from app.realtime import publish
from app.resources import Resources
from app.thrive.models import Assessment

log = logging.getLogger(__name__)

ENDED = "ended"


class NotCallHandler(Forbidden):
    status, code = 403, "not_call_handler"


class CallClosed(Conflict):
    code = "call_closed"


class WrapUpOver(Forbidden):
    status, code = 403, "wrap_up_over"


async def open_call_for(
    session: AsyncSession, resources: Resources, call_id: int, principal: Principal
) -> Call:
    """The call, if `principal` is its current handler or a supervisor (403 otherwise, 404
    unknown) and it is live or in wrap-up: 409 once the assessment is in, 403 once the call
    ended more than SEARCH_WRAPUP_MINUTES ago (the purpose, this call, is over)."""
    call = await calls.get_call(session, call_id)
    if not policy.allows_on(principal, Capability.identify_subjects, call):
        raise NotCallHandler("only the call's current handler or a supervisor may do this")
    if call.state == ENDED:
        assessed = await session.scalar(
            select(Assessment.id).where(Assessment.call_id == call.id).limit(1)
        )
        if assessed is not None:
            raise CallClosed(
                "the call has ended and its assessment is submitted", details={"call_id": call_id}
            )
        minutes = resources.settings.search_wrapup_minutes
        if call.ended_at is None or utcnow() - call.ended_at > timedelta(minutes=minutes):
            raise WrapUpOver(
                f"the call ended more than {minutes:g} minutes ago: records are searched only "
                "for a live call or its wrap-up",
                details={"call_id": call_id, "wrapup_minutes": minutes},
            )
    return call


def purpose(call: Call) -> str:
    """How a search or lookup served the call, for the audit: during it or in its wrap-up."""
    return "wrap-up" if call.state == ENDED else "mid-call"


async def count_search(resources: Resources, principal: Principal) -> None:
    """One search by `principal`: 429 past SEARCH_RATE_PER_MINUTE in the minute."""
    per_minute = resources.settings.search_rate_per_minute
    await limits.take(resources.cache, "search", principal.id, per_minute)


async def search(
    session: AsyncSession,
    resources: Resources,
    *,
    call_id: int,
    q: str,
    dob: date | None,
    limit: int,
    principal: Principal,
) -> dict[str, Any]:
    """Persons and households matching what the handler typed, ranked; the search (what was
    asked and which records it showed) is in the audit log, never in the application log."""
    await count_search(resources, principal)
    call = await open_call_for(session, resources, call_id, principal)
    query = history_search.parse_query(q, dob, resources.settings.default_region)
    found = await history_search.search(
        session, query, today=utcnow().astimezone(UTC).date(), limit=limit
    )
    SEARCHES.inc("person")
    audit.record(
        session,
        actor=principal.actor,
        action="consultation",
        subject_type="history_search",
        call_id=str(call.id),
        justification=f"{purpose(call)} search",
        records={
            "query": q,
            "dob": dob.isoformat() if dob else None,
            "kind": query.kind,
            "persons": [p["id"] for p in found.persons],
            "households": [h["id"] for h in found.households],
        },
    )
    log.info(
        "history searched",
        extra={
            "call_id": call.id,
            "kind": query.kind,
            "persons": len(found.persons),
            "households": len(found.households),
        },
    )
    return {
        "call_id": call.id,
        "kind": query.kind,
        "persons": found.persons,
        "households": found.households,
    }


async def link(
    session: AsyncSession,
    resources: Resources,
    *,
    call_id: int,
    subject_type: str,
    subject_id: str,
    role: str,
    principal: Principal,
) -> tuple[subjects.Linked, Call]:
    """Link a subject to the call (idempotent), audit it, and push the alerts it raised to
    the handler and supervisors once committed."""
    call = await open_call_for(session, resources, call_id, principal)
    linked = await subjects.link_subject(
        session,
        resources,
        call=call,
        subject_type=subject_type,
        subject_id=subject_id,
        role=role,
        staff_id=principal.id,
        actor=principal.actor,
    )
    if linked.created:
        audit.record(
            session,
            actor=principal.actor,
            action="combination",
            subject_type=subject_type,
            subject_id=subject_id,
            call_id=str(call.id),
            justification=f"linked to the call as {role}",
            records={
                "link": linked.link.id,
                "role": role,
                "alerts": [a.id for a in linked.alerts],
            },
        )
        snapshot = snapshot_of(call)
        for alert in linked.alerts:
            publish.stage_call_message(
                session, resources, snapshot, "alert.raised", alert_store.as_dict(alert)
            )
    return linked, call
