"""The consultation log, for admins (DPA 2018 s.62 reviews)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from app.api.deps import Auditor, SessionDep
from app.api.times import Rfc3339
from app.audit import service as audit
from app.audit.models import AuditLog

router = APIRouter(tags=["audit"])


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str | None
    call_id: str | None
    justification: str | None
    records: dict[str, object]


class AuditPage(BaseModel):
    items: list[AuditRead]
    next_before_id: int | None


@router.get("/audit", response_model=AuditPage)
async def list_audit(
    admin: Auditor,
    session: SessionDep,
    actor: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    call_id: str | None = None,
    since: Rfc3339 | None = None,
    until: Rfc3339 | None = None,
    before_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    rows: list[AuditLog] = list(
        await audit.search(
            session,
            actor=actor,
            subject_type=subject_type,
            subject_id=subject_id,
            call_id=call_id,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit,
        )
    )
    # Reading the log is itself a consultation worth recording.
    audit.record(
        session,
        actor=admin.actor,
        action="consultation",
        subject_type="audit_log",
        records={"count": len(rows)},
    )
    return AuditPage(
        items=[AuditRead.model_validate(r) for r in rows],
        next_before_id=rows[-1].id if len(rows) == limit else None,
    )
