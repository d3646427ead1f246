"""The training register (issue 12): completions per staff member and module, and how many
handlers are trained, expired or untrained in each module. Modules come from the QA form pack."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import ResourcesDep, SessionDep, holding
from app.auth.policy import Capability
from app.auth.service import Principal
from app.qa import training
from app.qa.schemas import (
    PACK_ID_PATTERN,
    STAFF_ID_PATTERN,
    TrainingRecordCreate,
    TrainingRecordList,
    TrainingRecordRead,
    TrainingSummary,
)

router = APIRouter(prefix="/training", tags=["training"])

Recorders = Annotated[Principal, holding(Capability.record_training)]
SummaryReaders = Annotated[Principal, holding(Capability.training_summary)]


@router.post("/records", response_model=TrainingRecordRead, status_code=201)
async def record_training(
    body: TrainingRecordCreate,
    principal: Recorders,
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
) -> TrainingRecordRead:
    """Record a completion: 201 new, 200 when the same completion was recorded before (its
    expiry updated). 422 `training_record_invalid` lists every problem."""
    stored, new = await training.record(session, resources.qa_form, body, principal)
    if not new:
        response.status_code = 200
    return TrainingRecordRead.model_validate(stored)


@router.get("/records", response_model=TrainingRecordList)
async def list_training(
    principal: Recorders,
    session: SessionDep,
    staff_id: Annotated[str | None, Query(pattern=STAFF_ID_PATTERN)] = None,
    module: Annotated[str | None, Query(pattern=PACK_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> TrainingRecordList:
    found = await training.list_records(
        session, principal, staff_id=staff_id, module=module, limit=limit
    )
    return TrainingRecordList(items=[TrainingRecordRead.model_validate(r) for r in found])


@router.get("/summary", response_model=TrainingSummary)
async def training_summary(
    principal: SummaryReaders,
    session: SessionDep,
    resources: ResourcesDep,
    on: date | None = None,
) -> TrainingSummary:
    """Active handlers trained / expired / untrained per module on day `on` (default today)."""
    return await training.summary(session, resources.qa_form, on, principal)
