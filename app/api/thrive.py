"""Call-time THRIVE+ (incident type, narrative cues, marks) and the assessment record.

`{call_id}` is the service's own call id (the `call_id` of WebSocket frames). Writes: the
call's current handler only. Reads: its handlers, supervisors, QA, admins.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.api.deps import CurrentStaff, ResourcesDep, SessionDep, require_roles
from app.auth.models import Role
from app.auth.service import Principal
from app.thrive import export
from app.thrive import service as thrive
from app.thrive.schemas import (
    AssessmentIn,
    AssessmentRead,
    CallThriveRead,
    IdsIn,
    IncidentTypeSet,
    NarrativeIn,
    NarrativeResult,
)

router = APIRouter(prefix="/api/v1", tags=["thrive"])

QaStaff = Annotated[Principal, Depends(require_roles(Role.supervisor, Role.qa, Role.admin))]


@router.get("/calls/{call_id}/thrive", response_model=CallThriveRead)
async def get_call_thrive(
    call_id: int, principal: CurrentStaff, session: SessionDep, resources: ResourcesDep
) -> CallThriveRead:
    """The call's incident type, prompts, advice (with answered/given marks) and cues."""
    return await thrive.current(session, resources, call_id, principal)


@router.put("/calls/{call_id}/incident-type", response_model=CallThriveRead)
async def set_incident_type(
    call_id: int,
    body: IncidentTypeSet,
    principal: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
) -> CallThriveRead:
    """Set the incident type; pushes `prompts.updated` and `advice.updated`."""
    return await thrive.set_incident_type(
        session, resources, call_id, body.incident_type, principal
    )


@router.post("/calls/{call_id}/narrative", response_model=NarrativeResult)
async def post_narrative(
    call_id: int,
    body: NarrativeIn,
    principal: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
) -> NarrativeResult:
    """The narrative so far (or an appended chunk); pushes each new cue once (`cue.detected`)."""
    return await thrive.add_narrative(session, resources, call_id, body, principal)


@router.post("/calls/{call_id}/prompts/answered", response_model=CallThriveRead)
async def mark_prompts_answered(
    call_id: int, body: IdsIn, principal: CurrentStaff, session: SessionDep, resources: ResourcesDep
) -> CallThriveRead:
    return await thrive.mark_prompts_answered(session, resources, call_id, body.ids, principal)


@router.post("/calls/{call_id}/advice/given", response_model=CallThriveRead)
async def mark_advice_given(
    call_id: int, body: IdsIn, principal: CurrentStaff, session: SessionDep, resources: ResourcesDep
) -> CallThriveRead:
    return await thrive.mark_advice_given(session, resources, call_id, body.ids, principal)


@router.get("/calls/{call_id}/assessment", response_model=AssessmentRead)
async def get_assessment(
    call_id: int, principal: CurrentStaff, session: SessionDep
) -> AssessmentRead:
    """The latest version with every earlier one (`history`, oldest first)."""
    return await thrive.get_assessment(session, call_id, principal)


@router.put("/calls/{call_id}/assessment", response_model=AssessmentRead, status_code=201)
@router.post("/calls/{call_id}/assessment", response_model=AssessmentRead, status_code=201)
async def submit_assessment(
    call_id: int,
    body: AssessmentIn,
    principal: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
) -> AssessmentRead:
    """A new version of the call's THRIVE+ record (earlier ones are kept); completes the
    call's contact record in history."""
    return await thrive.submit_assessment(session, resources, call_id, body, principal)


@router.get("/assessments.csv", response_class=Response)
async def export_assessments(
    principal: QaStaff,
    session: SessionDep,
    start: Annotated[str, Query(alias="from", description="date or RFC 3339, inclusive")],
    end: Annotated[str, Query(alias="to", description="date or RFC 3339, exclusive")],
) -> Response:
    """One row per call's latest assessment, for calls in [from, to); audit-logged."""
    lower, upper = export.date_range(start, end)
    rows = await thrive.export_latest(session, lower, upper, principal)
    return Response(
        export.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="assessments.csv"'},
    )
