"""The THRIVE+ assessment record: submitting a version (validated against the packs in force,
then the call's contact completed), reading every version, and the export of the latest ones.
Access as for the rest of THRIVE+ (app.thrive.service)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.service import Principal
from app.calls import qualifiers
from app.calls.models import Call
from app.db import utcnow
from app.errors import Conflict, NotFound
from app.history.write_back import complete_contact
from app.resources import Resources
from app.thrive import catalogue
from app.thrive.models import Assessment, CallThrive
from app.thrive.reads import alert_keys, call_alerts, call_cues, rules_of
from app.thrive.schemas import (
    AssessmentIn,
    AssessmentRead,
    AssessmentVersion,
    Grade,
)
from app.thrive.service import call_for_reader, call_for_writer, late_alerts
from app.thrive.validation import (
    AssessmentInvalid,
    RaisedCue,
    advice_by_kind,
    check_assessment,
    suggested_grade,
)

log = logging.getLogger(__name__)


class AssessmentConflict(Conflict):
    status, code = 409, "assessment_conflict"


class AssessmentNotFound(NotFound):
    status, code = 404, "assessment_not_found"


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
        victim_person_id=row.victim_person_id,
        location_household_id=row.location_household_id,
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
    rules = rules_of(resources)
    state = await session.get(CallThrive, call.id)
    incident_type = body.incident_type or (state.incident_type if state is not None else None)
    if incident_type is not None:
        # A type the packs do not know is a bad value, refused alone (as a bad grade is).
        catalogue.require_incident_type(rules, incident_type)
        if state is None or state.incident_type != incident_type:
            # Not set during the call (or changed here): the rules have not seen it yet.
            await late_alerts(session, resources, call, incident_type, principal)
    alerts = await call_alerts(session, call.id)
    carried = qualifiers.ids_of(call.qualifiers)
    # What was offered: the incident type's advice and prompts merged with the qualifiers'.
    advice_kinds = {a.id: a.kind for a in catalogue.advice(rules, incident_type, carried)}
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
    raised = await call_cues(session, call.id)
    effects = catalogue.cue_effects(rules, (c.cue_id for c in raised))
    offered = [
        p.id
        for p in catalogue.prompts(
            rules, incident_type, alert_keys(alerts), carried, effects.prompts
        )
    ]
    # The cues the call's narrative raised, weighed by their strand's severity in the packs
    # in force now (a reload that raises a strand applies to the next submission).
    cues = [
        RaisedCue(
            strand=c.strand,
            strand_name=rules.lexicon.strand_names.get(c.strand, c.strand.replace("_", " ")),
            severity=rules.lexicon.severity_of(c.strand),
            grade_floor=rules.lexicon.effects_of(c.cue_id).grade_floor,
        )
        for c in raised
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
        qualifiers=carried,
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
    suggested = suggested_grade(alerts, effects.floors)
    # Either says so: the DA qualifier on the call makes it domestic abuse (DA escalation
    # counts the contact) whatever the incident type or the body's flag.
    domestic_abuse = (
        body.domestic_abuse
        if body.domestic_abuse is not None
        else catalogue.is_domestic_abuse(incident_type)
    ) or qualifiers.is_domestic_abuse(call.qualifiers)
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

    contact = await complete_contact(
        session,
        call.id,
        incident_type=incident_type,
        victim=body.victim,
        domestic_abuse=domestic_abuse,
        outcome=body.grade.value,
    )
    # The record says whom the contact was filed under: the victim (linked, or the caller who
    # is one) and the incident's location.
    row.victim_person_id = contact.person_id if contact.victim else None
    row.location_household_id = contact.household_id
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
