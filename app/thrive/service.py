"""The call-time THRIVE+ service: incident type, narrative cues, marks, the assessment record.

Routers call these with the request's session (never committed here) and the process's
resources. Who may write is checked first: only the call's current handler; supervisors, QA
and admins read; a handler reads only calls they have handled. Publishing goes through
`after_commit`, so nothing is pushed that was not stored, and a 4xx stores nothing (the
request's transaction is rolled back).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls import service as calls
from app.calls.models import Call
from app.calls.pipeline import snapshot_of
from app.db import after_commit, upsert_for, utcnow
from app.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, Unprocessable
from app.history import alerts as history_alerts
from app.history import steps as history
from app.realtime import publish
from app.resources import Resources
from app.rules.ruleset import RuleSet
from app.thrive import catalogue
from app.thrive.models import Assessment, CallCue, CallThrive
from app.thrive.schemas import (
    AssessmentIn,
    AssessmentRead,
    AssessmentVersion,
    CallThriveRead,
    CueOut,
    Grade,
    NarrativeIn,
    NarrativeResult,
)
from app.thrive.validation import (
    Alert,
    AssessmentInvalid,
    RaisedCue,
    advice_by_kind,
    check_assessment,
    suggested_grade,
)

log = logging.getLogger(__name__)


class NotCallHandler(Forbidden):
    status, code = 403, "not_call_handler"


class NarrativeTooLarge(PayloadTooLarge):
    status, code = 413, "narrative_too_large"


class AssessmentConflict(Conflict):
    status, code = 409, "assessment_conflict"


class AssessmentNotFound(NotFound):
    status, code = 404, "assessment_not_found"


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


def _insert(session: AsyncSession, table: Any) -> Any:
    return upsert_for(session, table)


async def _state(session: AsyncSession, call_id: int) -> CallThrive:
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


async def _alerts(session: AsyncSession, call_id: int) -> list[Alert]:
    return [
        Alert(
            kind=a.kind,
            severity=a.severity,
            suggested_grade=a.suggested_grade,
            tags=tuple(a.tags or ()),
        )
        for a in await history_alerts.for_call(session, call_id)
    ]


def _alert_keys(alerts: Sequence[Alert]) -> list[str]:
    """Alert kinds and tags, the keys prompt packs name (a marker kind is a tag)."""
    keys: dict[str, None] = {}
    for alert in alerts:
        keys[alert.kind] = None
        for tag in alert.tags:
            keys[tag] = None
    return list(keys)


def _publish(
    session: AsyncSession, resources: Resources, call: Call, type_: str, data: dict[str, Any]
) -> None:
    """Push to the call's handler and supervisors once the transaction has committed."""
    # The call as it is now (its handler and state decide who receives the message).
    snapshot = snapshot_of(call)

    async def send() -> None:
        await publish.publish_call_message(resources, snapshot, type_, data)

    after_commit(session, send)


def _rules(resources: Resources) -> RuleSet:
    return resources.rules


def _view(
    resources: Resources,
    call_id: int,
    state: CallThrive | None,
    alerts: Sequence[Alert],
    cues: Sequence[CallCue],
) -> CallThriveRead:
    rules = _rules(resources)
    incident_type = state.incident_type if state is not None else None
    answered = set(state.prompts_answered if state is not None else ())
    given = set(state.advice_given if state is not None else ())
    prompts = catalogue.prompts(rules, incident_type, _alert_keys(alerts))
    advice = catalogue.advice(rules, incident_type) if incident_type else []
    return CallThriveRead(
        call_id=call_id,
        incident_type=incident_type,
        alert_kinds=sorted({a.kind for a in alerts}),
        prompts=[p.model_copy(update={"answered": p.id in answered}) for p in prompts],
        advice=[a.model_copy(update={"given": a.id in given}) for a in advice],
        cues=[
            CueOut(
                cue_id=c.cue_id,
                strand=c.strand,
                strand_name=rules.lexicon.strand_names.get(c.strand, ""),
                matched=list(c.matched),
                severity=rules.lexicon.severity_of(c.strand),
            )
            for c in cues
        ],
    )


# ---- call time ---------------------------------------------------------------------------


async def _cues(session: AsyncSession, call_id: int) -> Sequence[CallCue]:
    return (
        await session.scalars(
            select(CallCue)
            .where(CallCue.call_id == call_id)
            .order_by(CallCue.detected_at, CallCue.cue_id)
        )
    ).all()


async def current(
    session: AsyncSession, resources: Resources, call_id: int, principal: Principal
) -> CallThriveRead:
    """The call's THRIVE+ state now: incident type, prompts, advice (with marks), cues."""
    call = await call_for_reader(session, call_id, principal)
    state = await session.get(CallThrive, call.id)
    return _view(
        resources, call.id, state, await _alerts(session, call.id), await _cues(session, call.id)
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
    catalogue.require_incident_type(_rules(resources), incident_type)
    state = await _state(session, call.id)
    state.incident_type = incident_type
    state.incident_type_set_at = state.updated_at = utcnow()
    await session.flush()
    alerts = await _alerts(session, call.id)
    view = _view(resources, call.id, state, alerts, await _cues(session, call.id))
    _publish(
        session,
        resources,
        call,
        "prompts.updated",
        {
            "incident_type": incident_type,
            "alert_kinds": view.alert_kinds,
            "prompts": [p.model_dump() for p in view.prompts],
        },
    )
    _publish(
        session,
        resources,
        call,
        "advice.updated",
        {"incident_type": incident_type, "advice": [a.model_dump() for a in view.advice]},
    )
    log.info("incident type set", extra={"call": call.id, "incident_type": incident_type})
    return view


async def add_narrative(
    session: AsyncSession,
    resources: Resources,
    call_id: int,
    body: NarrativeIn,
    principal: Principal,
) -> NarrativeResult:
    """Keep the narrative, find its cues, and push each cue the call has not had yet.

    The cue ids pushed are rows of `call_cue` (primary key call + cue): inserting them is
    what decides "new", so two workers reading the same narrative push each cue once.
    """
    call = await call_for_writer(session, call_id, principal)
    limit = resources.settings.narrative_max_chars
    if len(body.text) > limit:
        raise NarrativeTooLarge(f"a narrative is at most {limit} characters")
    state = await _state(session, call.id)  # locked: concurrent first posts serialise here
    started = not state.narrative
    if body.mode == "append":
        # One statement: concurrent appends queue on the row and none is lost.
        text = await session.scalar(
            update(CallThrive)
            .where(CallThrive.call_id == call.id)
            .values(
                narrative=func.coalesce(CallThrive.narrative, "") + body.text,
                updated_at=utcnow(),
            )
            .returning(CallThrive.narrative)
        )
        text = text or ""
    else:
        text = body.text
        await session.execute(
            update(CallThrive)
            .where(CallThrive.call_id == call.id)
            .values(narrative=text, updated_at=utcnow())
        )
    if len(text) > limit:
        raise NarrativeTooLarge(
            f"a narrative is at most {limit} characters; this append exceeds it"
        )

    if started and text:
        # s.62 collection: once per call when the incident narrative starts, not per keystroke
        # post (later posts alter the same record, already logged as this call's narrative).
        audit.record(
            session,
            actor=principal.actor,
            action="collection",
            subject_type="narrative",
            subject_id=str(call.id),
            call_id=str(call.id),
            records={"call": call.id},
        )

    found = catalogue.cues(_rules(resources), text)
    fresh: list[CueOut] = []
    if found:
        now = utcnow()
        inserted = await session.scalars(
            _insert(session, CallCue)
            .values(
                [
                    {
                        "call_id": call.id,
                        "cue_id": c.cue_id,
                        "strand": c.strand,
                        "matched": c.matched,
                        "detected_at": now,
                    }
                    for c in found
                ]
            )
            .on_conflict_do_nothing(index_elements=[CallCue.call_id, CallCue.cue_id])
            .returning(CallCue.cue_id)
        )
        new_ids = set(inserted.all())
        fresh = [c for c in found if c.cue_id in new_ids]
    for cue in fresh:
        _publish(session, resources, call, "cue.detected", cue.model_dump())
    total = await session.scalar(
        select(func.count()).select_from(CallCue).where(CallCue.call_id == call.id)
    )
    # Counts only: the narrative and the matched words are personal data, and so is a cue's
    # id ("pregnancy.pregnant" says what the caller said: a health fact about a person).
    log.info(
        "narrative read",
        extra={"call": call.id, "new_cues": len(fresh), "chars": len(text)},
    )
    return NarrativeResult(call_id=call.id, new_cues=fresh, cues_total=int(total or 0))


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
    state = await _state(session, call.id)
    alerts = await _alerts(session, call.id)
    offered = {
        p.id for p in catalogue.prompts(_rules(resources), state.incident_type, _alert_keys(alerts))
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
    return _view(resources, call.id, state, alerts, await _cues(session, call.id))


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
    state = await _state(session, call.id)
    if state.incident_type is None:
        raise IncidentTypeNotSet("set the call's incident type before recording advice given")
    kinds = {a.id: a.kind for a in catalogue.advice(_rules(resources), state.incident_type)}
    known = set(kinds) if given else set(kinds) | set(state.advice_given)
    unknown = sorted(set(ids) - known)
    if unknown:
        raise UnknownAdvice(
            f"advice ids not in the pack for incident type {state.incident_type}: "
            + ", ".join(unknown),
            {"unknown": unknown},
        )
    state.advice_given = _marked(state.advice_given, ids, given)
    state.updated_at = utcnow()
    await session.flush()
    alerts = await _alerts(session, call.id)
    return _view(resources, call.id, state, alerts, await _cues(session, call.id))


# ---- the assessment record ---------------------------------------------------------------


def _version(row: Assessment) -> AssessmentVersion:
    return AssessmentVersion(
        version=row.version,
        submitted_by=row.submitted_by,
        submitted_at=row.submitted_at,
        incident_type=row.incident_type,
        grade=Grade(row.grade),
        suggested_grade=Grade(row.suggested_grade) if row.suggested_grade else None,
        grade_reason=row.grade_reason,
        elements=dict(row.elements),
        advice_given={k: list(v) for k, v in row.advice_given.items()},
        prompts_answered=list(row.prompts_answered),
        repeat_victim_check=row.repeat_victim_check,
        victim=row.victim,
        domestic_abuse=row.domestic_abuse,
        alert_kinds=list(row.alert_kinds),
    )


async def _versions(session: AsyncSession, call_id: int) -> list[Assessment]:
    return list(
        await session.scalars(
            select(Assessment).where(Assessment.call_id == call_id).order_by(Assessment.version)
        )
    )


def _read(call_id: int, rows: list[Assessment]) -> AssessmentRead:
    history_ = [_version(r) for r in rows]
    return AssessmentRead(call_id=call_id, history=history_, **history_[-1].model_dump())


async def submit_assessment(
    session: AsyncSession,
    resources: Resources,
    call_id: int,
    body: AssessmentIn,
    principal: Principal,
) -> AssessmentRead:
    """Validate and store a new version of the call's THRIVE+ record, then complete the
    call's contact record (history write-back) so the next lookup counts it."""
    call = await call_for_writer(session, call_id, principal)
    rules = _rules(resources)
    alerts = await _alerts(session, call.id)
    state = await session.get(CallThrive, call.id)
    incident_type = body.incident_type or (state.incident_type if state is not None else None)
    if incident_type is not None:
        # A type the packs do not know is a bad value, refused alone (as a bad grade is).
        catalogue.require_incident_type(rules, incident_type)
    advice_kinds = (
        {a.id: a.kind for a in catalogue.advice(rules, incident_type)} if incident_type else {}
    )
    advice_given = (
        body.advice_given
        if body.advice_given is not None
        else list(state.advice_given if state is not None else [])
    )
    prompts_answered = (
        body.prompts_answered
        if body.prompts_answered is not None
        else list(state.prompts_answered if state is not None else [])
    )
    offered = [p.id for p in catalogue.prompts(rules, incident_type, _alert_keys(alerts))]
    # The cues the call's narrative raised, weighed by their strand's severity in the packs
    # in force now (a reload that raises a strand applies to the next submission).
    cues = [
        RaisedCue(
            strand=c.strand,
            strand_name=rules.lexicon.strand_names.get(c.strand, c.strand.replace("_", " ")),
            severity=rules.lexicon.severity_of(c.strand),
        )
        for c in await _cues(session, call.id)
    ]
    problems = check_assessment(
        body,
        incident_type=incident_type,
        alerts=alerts,
        cues=cues,
        advice_kinds=advice_kinds,
        advice_given=advice_given,
        prompt_ids=offered,
        prompts_answered=prompts_answered,
    )
    if problems:
        raise AssessmentInvalid(
            "the assessment cannot be submitted: " + "; ".join(p.reason for p in problems),
            [p.as_dict() for p in problems],
        )
    # The checker refuses a record without them.
    assert incident_type is not None and body.grade is not None

    latest = await session.scalar(
        select(func.max(Assessment.version)).where(Assessment.call_id == call.id)
    )
    version = int(latest or 0) + 1
    suggested = suggested_grade(alerts)
    domestic_abuse = (
        body.domestic_abuse
        if body.domestic_abuse is not None
        else catalogue.is_domestic_abuse(incident_type)
    )
    row = Assessment(
        call_id=call.id,
        version=version,
        submitted_by=principal.id,
        submitted_at=utcnow(),
        incident_type=incident_type,
        grade=body.grade.value,
        suggested_grade=suggested.value if suggested else None,
        grade_reason=body.grade_reason or None,
        elements={e.value: v.model_dump() for e, v in body.elements.items()},
        advice_given=advice_by_kind(advice_given, advice_kinds),
        prompts_answered=list(dict.fromkeys(prompts_answered)),
        repeat_victim_check=body.repeat_victim_check,
        victim=body.victim,
        domestic_abuse=domestic_abuse,
        alert_kinds=sorted({a.kind for a in alerts}),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Two submissions raced for the same version number: the other one won.
        raise AssessmentConflict("another version was submitted at the same time; reload") from exc

    await history.complete_contact(
        session,
        call.id,
        incident_type=incident_type,
        victim=body.victim,
        domestic_abuse=domestic_abuse,
        outcome=body.grade.value,
    )
    audit.record(
        session,
        actor=principal.actor,
        action="collection" if version == 1 else "alteration",
        subject_type="assessment",
        subject_id=str(row.id),
        call_id=str(call.id),
        records={"assessment": row.id, "version": version},
    )
    log.info("assessment submitted", extra={"call": call.id, "version": version})
    return _read(call.id, await _versions(session, call.id))


async def get_assessment(
    session: AsyncSession, call_id: int, principal: Principal
) -> AssessmentRead:
    """The latest version of the call's assessment with every earlier one (404 if none)."""
    call = await call_for_reader(session, call_id, principal)
    rows = await _versions(session, call.id)
    if not rows:
        raise AssessmentNotFound("no assessment has been submitted for this call")
    audit.record(
        session,
        actor=principal.actor,
        action="consultation",
        subject_type="assessment",
        subject_id=str(rows[-1].id),
        call_id=str(call.id),
        records={"assessment": [r.id for r in rows]},
    )
    return _read(call.id, rows)


# ---- export ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRow:
    assessment: Assessment
    call: Call


async def export_latest(
    session: AsyncSession, start: datetime, end: datetime, principal: Principal
) -> list[ExportRow]:
    """The latest assessment of every call that came in within [start, end), by call time."""
    latest = (
        select(Assessment.call_id, func.max(Assessment.version).label("version"))
        .group_by(Assessment.call_id)
        .subquery()
    )
    call_time = func.coalesce(Call.offered_at, Call.created_at)
    result = await session.execute(
        select(Assessment, Call)
        .join(
            latest,
            (latest.c.call_id == Assessment.call_id) & (latest.c.version == Assessment.version),
        )
        .join(Call, Call.id == Assessment.call_id)
        .where(call_time >= start, call_time < end)
        .order_by(call_time, Call.id)
    )
    rows = [ExportRow(assessment=a, call=c) for a, c in result.all()]
    audit.record(
        session,
        actor=principal.actor,
        action="disclosure",
        subject_type="assessment",
        justification="assessment export (CSV)",
        records={
            "from": start.isoformat(),
            "to": end.isoformat(),
            "assessments": [r.assessment.id for r in rows],
        },
    )
    return rows
