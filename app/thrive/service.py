"""The call-time THRIVE+ service: access, incident type, marks (the narrative is in narrative.py).

Routers call these with the request's session (never committed here) and the process's
resources. Who may write is checked first: only the call's current handler; supervisors, QA
and admins read; a handler reads only calls they have handled. Messages are staged in
the transaction and written to the outbox with it (app.realtime.outbox), so nothing is pushed
that was not stored, and a 4xx stores nothing (the
request's transaction is rolled back).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls import qualifiers
from app.calls import service as calls
from app.calls.models import Call
from app.calls.snapshot import snapshot_of
from app.db import Base, Upsert, upsert_for, utcnow
from app.errors import Forbidden, Unprocessable
from app.history import alerts as history_alerts
from app.history import rerun
from app.realtime import publish
from app.resources import Resources
from app.rules.ruleset import RuleSet
from app.thrive import catalogue
from app.thrive.models import CallCue, CallThrive
from app.thrive.reads import alert_keys, call_alerts, call_cues, rules_of
from app.thrive.schemas import (
    CallThriveRead,
    CueOut,
)
from app.thrive.validation import (
    Alert,
    suggested_grade,
)

log = logging.getLogger(__name__)


class NotCallHandler(Forbidden):
    status, code = 403, "not_call_handler"


class UnknownPrompt(Unprocessable):
    code = "unknown_prompt"


class UnknownAdvice(Unprocessable):
    code = "unknown_advice_item"


class IncidentTypeNotSet(Unprocessable):
    code = "incident_type_not_set"


# ---- access ------------------------------------------------------------------------------


async def call_for_writer(session: AsyncSession, call_id: int, principal: Principal) -> Call:
    """The call, if `principal` is its current handler (404 unknown call, 403 otherwise)."""
    call = await calls.get_call(session, call_id)
    if not policy.allows_on(principal, Capability.act_on_call, call):
        raise NotCallHandler("only the call's current handler may record THRIVE+ for it")
    return call


async def call_for_reader(session: AsyncSession, call_id: int, principal: Principal) -> Call:
    """The call, if `principal` may read its THRIVE+ record."""
    call = await calls.get_call(session, call_id)
    if policy.allows_on(principal, Capability.read_call, call):
        return call
    raise NotCallHandler("only the call's handlers, supervisors, QA and admins may read this")


# ---- helpers -----------------------------------------------------------------------------


def _insert(session: AsyncSession, table: type[Base]) -> Upsert:
    return upsert_for(session, table)


async def locked_state(session: AsyncSession, call_id: int) -> CallThrive:
    """The call's THRIVE+ row, created if missing, locked for this transaction."""
    await session.execute(
        _insert(session, CallThrive)
        .values(call_id=call_id, prompts_answered=[], advice_given=[], updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=[CallThrive.call_id])
    )
    row = await session.scalar(
        select(CallThrive)
        .where(CallThrive.call_id == call_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None  # inserted above or already there
    return row


def publish_to_call(
    session: AsyncSession, resources: Resources, call: Call, type_: str, data: dict[str, object]
) -> None:
    """Push to the call's handler and supervisors once the transaction has committed."""
    # The call as it is now (its handler and state decide who receives the message).
    publish.stage_call_message(session, resources, snapshot_of(call), type_, data)


def _view(
    resources: Resources,
    call: Call,
    state: CallThrive | None,
    alerts: Sequence[Alert],
    cues: Sequence[CallCue],
) -> CallThriveRead:
    rules = rules_of(resources)
    incident_type = state.incident_type if state is not None else None
    answered = set(state.prompts_answered if state is not None else ())
    given = set(state.advice_given if state is not None else ())
    carried = qualifiers.ids_of(call.qualifiers)
    keys = alert_keys(alerts)
    effects = catalogue.cue_effects(rules, (c.cue_id for c in cues))
    prompts = catalogue.prompts(rules, incident_type, keys, carried, effects.prompts)
    advice = catalogue.advice(rules, incident_type, carried, keys)
    suggested = suggested_grade(alerts, effects.floors)
    return CallThriveRead(
        call_id=call.id,
        incident_type=incident_type,
        qualifiers=carried,
        qualifier_strands=qualifiers.strands_of(call.qualifiers),
        alert_kinds=sorted({a.kind for a in alerts}),
        prompts=[p.model_copy(update={"answered": p.id in answered}) for p in prompts],
        advice=[a.model_copy(update={"given": a.id in given}) for a in advice],
        cues=[_cue_out(rules, c) for c in cues],
        suggested_grade=suggested,
        proposed_qualifiers=[q for q in effects.qualifiers if q not in carried],
    )


def _about(view: CallThriveRead) -> dict[str, object]:
    return {
        "incident_type": view.incident_type,
        "qualifiers": view.qualifiers,
        "qualifier_strands": view.qualifier_strands,
    }


def publish_prompts(
    session: AsyncSession, resources: Resources, call: Call, view: CallThriveRead
) -> None:
    """Push the call's prompts as they are now (`prompts.updated`), with the suggested grade
    and the qualifiers the narrative's cues propose (cues change all three)."""
    publish_to_call(
        session,
        resources,
        call,
        "prompts.updated",
        {
            **_about(view),
            "alert_kinds": view.alert_kinds,
            "prompts": [p.model_dump() for p in view.prompts],
            "suggested_grade": view.suggested_grade,
            "proposed_qualifiers": view.proposed_qualifiers,
        },
    )


def _cue_out(rules: RuleSet, cue: CallCue) -> CueOut:
    """A stored cue as the API shows it, weighed by the packs in force now."""
    effects = rules.lexicon.effects_of(cue.cue_id)
    return CueOut(
        cue_id=cue.cue_id,
        strand=cue.strand,
        strand_name=rules.lexicon.strand_names.get(cue.strand, ""),
        matched=list(cue.matched),
        severity=rules.lexicon.severity_of(cue.strand),
        qualifiers_proposed=list(effects.qualifiers),
        prompts_added=list(effects.prompts),
        grade_floor=effects.grade_floor,
    )


def publish_guidance(
    session: AsyncSession, resources: Resources, call: Call, view: CallThriveRead
) -> None:
    """Push the call's prompts (`prompts.updated`) and advice (`advice.updated`) as they are
    now: the incident type's merged with the qualifiers' (both change them)."""
    about = _about(view)
    publish_prompts(session, resources, call, view)
    publish_to_call(
        session,
        resources,
        call,
        "advice.updated",
        {**about, "advice": [a.model_dump() for a in view.advice]},
    )


def view_of(
    resources: Resources,
    call: Call,
    state: CallThrive | None,
    alerts: Sequence[Alert],
    cues: Sequence[CallCue],
) -> CallThriveRead:
    """The call's THRIVE+ state as the API returns it (for the other THRIVE+ modules)."""
    return _view(resources, call, state, alerts, cues)


# ---- call time ---------------------------------------------------------------------------


async def current(
    session: AsyncSession, resources: Resources, call_id: int, principal: Principal
) -> CallThriveRead:
    """The call's THRIVE+ state now: incident type, prompts, advice (with marks), cues."""
    call = await call_for_reader(session, call_id, principal)
    state = await session.get(CallThrive, call.id)
    return _view(
        resources,
        call,
        state,
        await call_alerts(session, call.id),
        await call_cues(session, call.id),
    )


async def set_incident_type(
    session: AsyncSession,
    resources: Resources,
    call_id: int,
    incident_type: str,
    principal: Principal,
) -> CallThriveRead:
    """Store the call's incident type and push the prompts and advice it brings."""
    call = await call_for_writer(session, call_id, principal)
    catalogue.require_incident_type(rules_of(resources), incident_type)
    state = await locked_state(session, call.id)
    state.incident_type = incident_type
    state.incident_type_set_at = state.updated_at = utcnow()
    await session.flush()
    await late_alerts(session, resources, call, incident_type, principal)
    alerts = await call_alerts(session, call.id)
    view = _view(resources, call, state, alerts, await call_cues(session, call.id))
    publish_guidance(session, resources, call, view)
    log.info("incident type set", extra={"call": call.id, "incident_type": incident_type})
    return view


async def late_alerts(
    session: AsyncSession,
    resources: Resources,
    call: Call,
    incident_type: str | None,
    principal: Principal,
) -> None:
    """Run the alert rules again now that the call's incident type or qualifiers are known (a
    DA call within 12 months of a MARAC referral) and push the alerts it newly raises."""
    raised = await rerun.rerun_alerts(
        session,
        resources,
        call,
        incident_type=incident_type,
        qualifiers=qualifiers.ids_of(call.qualifiers),
        actor=principal.actor,
    )
    if raised:
        publish_to_call(
            session,
            resources,
            call,
            "alert.raised",
            {"alerts": [history_alerts.as_dict(a) for a in raised]},
        )


def _marked(current: list[str], ids: list[str], marked: bool) -> list[str]:
    """`current` with `ids` added in order (marked) or taken out (unmarked)."""
    if marked:
        return list(dict.fromkeys([*current, *ids]))
    gone = set(ids)
    return [i for i in current if i not in gone]


async def mark_prompts_answered(
    session: AsyncSession,
    resources: Resources,
    call_id: int,
    ids: list[str],
    principal: Principal,
    answered: bool = True,
) -> CallThriveRead:
    """Record prompts the handler has answered (ids of the prompts offered on this call), or
    unmark them (`answered=False`: the handler unticked one)."""
    call = await call_for_writer(session, call_id, principal)
    state = await locked_state(session, call.id)
    alerts = await call_alerts(session, call.id)
    cues = await call_cues(session, call.id)
    offered = {
        p.id
        for p in catalogue.prompts(
            rules_of(resources),
            state.incident_type,
            alert_keys(alerts),
            qualifiers.ids_of(call.qualifiers),
            catalogue.cue_effects(rules_of(resources), (c.cue_id for c in cues)).prompts,
        )
    }
    # Unmarking may name a prompt the call no longer offers (the incident type changed).
    known = offered if answered else offered | set(state.prompts_answered)
    unknown = sorted(set(ids) - known)
    if unknown:
        raise UnknownPrompt(
            "prompt ids not offered on this call: " + ", ".join(unknown),
            {"unknown": unknown},
        )
    state.prompts_answered = _marked(state.prompts_answered, ids, answered)
    state.updated_at = utcnow()
    await session.flush()
    return _view(resources, call, state, alerts, cues)


async def mark_advice_given(
    session: AsyncSession,
    resources: Resources,
    call_id: int,
    ids: list[str],
    principal: Principal,
    given: bool = True,
) -> CallThriveRead:
    """Record advice items given to the caller (ids of the call's incident type's advice), or
    unmark them (`given=False`: the handler unticked one)."""
    call = await call_for_writer(session, call_id, principal)
    state = await locked_state(session, call.id)
    carried = qualifiers.ids_of(call.qualifiers)
    if state.incident_type is None and not carried:
        raise IncidentTypeNotSet("set the call's incident type before recording advice given")
    kinds = {
        a.id: a.kind for a in catalogue.advice(rules_of(resources), state.incident_type, carried)
    }
    known = set(kinds) if given else set(kinds) | set(state.advice_given)
    unknown = sorted(set(ids) - known)
    if unknown:
        raise UnknownAdvice(
            f"advice ids not offered for incident type {state.incident_type} "
            f"and the call's qualifiers: " + ", ".join(unknown),
            {"unknown": unknown},
        )
    state.advice_given = _marked(state.advice_given, ids, given)
    state.updated_at = utcnow()
    await session.flush()
    alerts = await call_alerts(session, call.id)
    return _view(resources, call, state, alerts, await call_cues(session, call.id))
