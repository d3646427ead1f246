"""Identification mid-call (issue 13): link a person or household to a call in a role.

`POST /api/v1/calls/{call_id}/subjects` `{"person_id" | "household_id", "role"}`: the call's
current handler or a supervisor, while the call is live or in wrap-up. Idempotent: the same
link again answers 200 with the link as it is and raises nothing; a new one answers 201 with
the alerts it raised (also pushed as `alert.raised`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.deps import CurrentStaff, ResourcesDep, SessionDep
from app.history import alerts as alert_store
from app.thrive import identify

router = APIRouter(tags=["history"])

Role = Literal["victim", "caller", "suspect", "witness", "subject"]
SubjectId = Field(default=None, min_length=1, max_length=64)


class SubjectLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: str | None = SubjectId
    household_id: str | None = SubjectId
    role: Role

    @model_validator(mode="after")
    def _one_subject(self) -> SubjectLink:
        if (self.person_id is None) == (self.household_id is None):
            raise ValueError("give exactly one of person_id or household_id")
        return self


class SubjectLinkRead(BaseModel):
    call_id: int
    link_id: int
    person_id: str | None
    household_id: str | None
    role: Role
    linked_by: str
    linked_at: datetime
    created: bool
    alerts: list[dict[str, Any]]


@router.post("/calls/{call_id}/subjects", response_model=SubjectLinkRead, status_code=201)
async def link_subject(
    call_id: int,
    body: SubjectLink,
    principal: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
    response: Response,
) -> SubjectLinkRead:
    """Link the subject, run the alert rules on them, push the alerts the call did not have."""
    subject_type, subject_id = (
        ("person", body.person_id)
        if body.person_id is not None
        else ("household", body.household_id)
    )
    assert subject_id is not None  # the model requires one
    linked, _ = await identify.link(
        session,
        resources,
        call_id=call_id,
        subject_type=subject_type,
        subject_id=subject_id,
        role=body.role,
        principal=principal,
    )
    if not linked.created:
        response.status_code = 200
    link = linked.link
    return SubjectLinkRead(
        call_id=link.call_id,
        link_id=link.id,
        person_id=link.subject_id if link.subject_type == "person" else None,
        household_id=link.subject_id if link.subject_type == "household" else None,
        role=body.role,
        linked_by=link.linked_by,
        linked_at=link.linked_at,
        created=linked.created,
        alerts=[alert_store.as_dict(a) for a in linked.alerts],
    )
