"""Call-time THRIVE+ (incident type, narrative cues, marks), the assessment draft and record.

`{call_id}` is the service's own call id (the `call_id` of WebSocket frames). Writes: the
call's current handler only, each accepting an `Idempotency-Key` (app.api.idempotency: a
retried write stores once). Reads: its handlers, supervisors, QA, admins.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.deps import CurrentStaff, ResourcesDep, SessionDep, holding
from app.api.idempotency import IdempotencyDep
from app.auth.policy import Capability
from app.auth.service import STAFF_ID, Principal
from app.history import consultation
from app.thrive import assessment, drafts, export, narrative
from app.thrive import service as thrive
from app.thrive.drafts import DraftIn, DraftRead
from app.thrive.schemas import (
    AdviceMarksIn,
    AssessmentIn,
    AssessmentRead,
    CallThriveRead,
    IncidentTypeSet,
    NarrativeIn,
    NarrativeResult,
    PromptMarksIn,
)

router = APIRouter(tags=["thrive"])

Exporters = Annotated[Principal, holding(Capability.export_assessments)]
# What a write answers: its model, or (with an Idempotency-Key) the same body as JSON, stored.
Written = BaseModel | JSONResponse


@router.get("/calls/{call_id}/thrive", response_model=CallThriveRead)
async def get_call_thrive(
    call_id: int, principal: CurrentStaff, session: SessionDep, resources: ResourcesDep
) -> CallThriveRead:
    """The call's incident type, prompts, advice (with answered/given marks) and cues."""
    view = await thrive.current(session, resources, call_id, principal)
    # Its alerts name people from the caller's history: who saw them, when, is recorded.
    await consultation.log_calls_shown(
        session, [call_id], actor=principal.actor, justification="THRIVE+ view"
    )
    return view


@router.put("/calls/{call_id}/incident-type", response_model=CallThriveRead)
async def set_incident_type(
    call_id: int,
    body: IncidentTypeSet,
    principal: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
    idem: IdempotencyDep,
) -> Written:
    """Set the incident type; pushes `prompts.updated` and `advice.updated`."""
    return await idem.run(
        200,
        lambda: thrive.set_incident_type(
            session, resources, call_id, body.incident_type, principal
        ),
    )


@router.post("/calls/{call_id}/narrative", response_model=NarrativeResult)
async def post_narrative(
    call_id: int,
    body: NarrativeIn,
    principal: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
    idem: IdempotencyDep,
) -> Written:
    """The narrative so far (or an appended chunk); pushes each new cue once (`cue.detected`)."""
    return await idem.run(
        200, lambda: narrative.add_narrative(session, resources, call_id, body, principal)
    )


@router.post("/calls/{call_id}/prompts/answered", response_model=CallThriveRead)
async def mark_prompts_answered(
    call_id: int,
    body: PromptMarksIn,
    principal: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
    idem: IdempotencyDep,
) -> Written:
    """Mark prompts answered (`"answered": false` takes the marks off)."""
    return await idem.run(
        200,
        lambda: thrive.mark_prompts_answered(
            session, resources, call_id, body.ids, principal, answered=body.answered
        ),
    )


@router.post("/calls/{call_id}/advice/given", response_model=CallThriveRead)
async def mark_advice_given(
    call_id: int,
    body: AdviceMarksIn,
    principal: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
    idem: IdempotencyDep,
) -> Written:
    """Mark advice given (`"given": false` takes the marks off)."""
    return await idem.run(
        200,
        lambda: thrive.mark_advice_given(
            session, resources, call_id, body.ids, principal, given=body.given
        ),
    )


@router.get("/calls/{call_id}/assessment", response_model=AssessmentRead)
async def get_assessment(
    call_id: int, principal: CurrentStaff, session: SessionDep
) -> AssessmentRead:
    """The latest version with every earlier one (`history`, oldest first)."""
    return await assessment.get_assessment(session, call_id, principal)


@router.put("/calls/{call_id}/assessment", response_model=AssessmentRead, status_code=201)
@router.post("/calls/{call_id}/assessment", response_model=AssessmentRead, status_code=201)
async def submit_assessment(
    call_id: int,
    body: AssessmentIn,
    principal: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
    idem: IdempotencyDep,
) -> Written:
    """A new version of the call's THRIVE+ record (earlier ones are kept); completes the
    call's contact record in history. A replay (same Idempotency-Key) adds no version."""
    return await idem.run(
        201, lambda: assessment.submit_assessment(session, resources, call_id, body, principal)
    )


@router.get("/calls/{call_id}/draft", response_model=DraftRead)
async def get_draft(
    call_id: int,
    principal: CurrentStaff,
    session: SessionDep,
    handler: Annotated[
        str | None,
        Query(
            pattern=STAFF_ID.pattern,
            description="whose draft (supervisors, admins); default: the caller's",
        ),
    ] = None,
) -> DraftRead:
    """The assessment form as a handler last saved it (revision 0 and empty if never)."""
    return await drafts.get_draft(session, call_id, principal, handler)


@router.put("/calls/{call_id}/draft", response_model=DraftRead)
async def put_draft(
    call_id: int,
    body: DraftIn,
    principal: CurrentStaff,
    session: SessionDep,
    idem: IdempotencyDep,
) -> Written:
    """Save the form as typed over `revision` (409 `draft_conflict` with the current draft if
    it was saved elsewhere since)."""
    return await idem.run(200, lambda: drafts.put_draft(session, call_id, body, principal))


@router.get("/assessments.csv", response_class=Response)
async def export_assessments(
    principal: Exporters,
    session: SessionDep,
    start: Annotated[str, Query(alias="from", description="date or RFC 3339, inclusive")],
    end: Annotated[str, Query(alias="to", description="date or RFC 3339, exclusive")],
) -> Response:
    """One row per call's latest assessment, for calls in [from, to); audit-logged."""
    lower, upper = export.date_range(start, end)
    rows = await assessment.export_latest(session, lower, upper, principal)
    return Response(
        export.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="assessments.csv"'},
    )
