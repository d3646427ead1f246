"""Calls: list and read, role-checked. A handler sees the calls they have been on; supervisors,
QA reviewers and admins see all."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from app.api.deps import CurrentStaff, ResourcesDep, SessionDep, holding
from app.api.idempotency import IdempotencyDep
from app.api.times import Rfc3339
from app.audit import service as audit
from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls import qualifiers as call_qualifiers
from app.calls import service as calls
from app.calls.models import Call, CallEventRow
from app.calls.queries import CallFilter
from app.errors import Forbidden
from app.history import consultation
from app.thrive import qualifiers
from app.thrive.schemas import CallThriveRead, QualifiersSet

router = APIRouter(prefix="/calls", tags=["calls"])

Reader = Annotated[Principal, holding(Capability.read_call)]


class CallRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    external_id: str
    state: str
    caller_e164: str | None
    presentation: str
    called: str | None
    queue: str | None
    handler_id: str | None
    handlers: list[str]
    offered_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    end_cause: str | None
    flagged: bool
    wait_seconds: float | None  # offered -> answered, or offered -> ended if never answered
    talk_seconds: float | None  # answered -> ended
    # Set by the handler (PUT /calls/{id}/qualifiers): domestic_abuse, hate_crime, ...
    qualifiers: list[str] = []
    qualifier_strands: dict[str, list[str]] = {}

    @classmethod
    def of(cls, call: Call) -> CallRead:
        wait_end = call.answered_at or call.ended_at
        wait = (
            (wait_end - call.offered_at).total_seconds() if wait_end and call.offered_at else None
        )
        talk = (
            (call.ended_at - call.answered_at).total_seconds()
            if call.ended_at and call.answered_at
            else None
        )
        return cls.model_validate(
            {
                **{k: getattr(call, k) for k in cls.model_fields if hasattr(call, k)},
                "handlers": list(call.handlers or []),
                "wait_seconds": None if wait is None else max(0.0, wait),
                "talk_seconds": None if talk is None else max(0.0, talk),
                "qualifiers": call_qualifiers.ids_of(call.qualifiers),
                "qualifier_strands": call_qualifiers.strands_of(call.qualifiers),
            }
        )


class CallEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    event_id: str
    type: str
    occurred_at: datetime
    seq: int | None
    handler_id: str | None
    cause: str | None
    state_before: str | None
    state_after: str
    received_at: datetime
    processed_at: datetime | None
    attempts: int
    last_error: str | None

    @classmethod
    def of(cls, row: CallEventRow) -> CallEventRead:
        canonical = row.canonical or {}
        return cls.model_validate(
            {
                **{k: getattr(row, k) for k in cls.model_fields if hasattr(row, k)},
                "handler_id": canonical.get("handler_id"),
                "cause": canonical.get("cause"),
            }
        )


class CallDetail(CallRead):
    events: list[CallEventRead]


class CallPage(BaseModel):
    items: list[CallRead]
    # Pass as `before` for the next (older) page; None on the last page.
    next_before: int | None


@router.get("", response_model=CallPage)
async def list_calls(
    principal: Reader,
    session: SessionDep,
    active: bool | None = None,
    handler: Annotated[str | None, Query(max_length=32)] = None,
    flagged: bool | None = None,
    since: Rfc3339 | None = None,
    until: Rfc3339 | None = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CallPage:
    """Calls newest first; `since`/`until` bound the offered time; page with `before`."""
    if not policy.sees_every_call(principal, Capability.read_call):
        if handler is not None and handler != principal.id:
            raise Forbidden("a handler sees only their own calls")
        handler = principal.id
    where = CallFilter(
        active=active,
        handler_id=handler,
        flagged=flagged,
        since=since,
        until=until,
        before_id=before,
        limit=limit,
    )
    rows = await calls.search(session, where)
    # The list shows callers' numbers: who saw which, and so whose, is recorded.
    await consultation.log_calls_shown(
        session, [c.id for c in rows], actor=principal.actor, justification="calls list"
    )
    return CallPage(
        items=[CallRead.of(c) for c in rows],
        next_before=rows[-1].id if len(rows) == limit else None,
    )


@router.get("/{call_id}", response_model=CallDetail)
async def read_call(call_id: int, principal: Reader, session: SessionDep) -> CallDetail:
    """One call with its events in time order."""
    call = await calls.get_call(session, call_id)
    if not policy.allows_on(principal, Capability.read_call, call):
        raise Forbidden("a handler sees only their own calls")
    events = await calls.events_of(session, call_id)
    # The call record shows a caller's number: who looked, when, is recorded.
    audit.consulted_call(session, actor=principal.actor, call_id=call.id)
    base = CallRead.of(call)
    return CallDetail(**base.model_dump(), events=[CallEventRead.of(e) for e in events])


@router.put("/{call_id}/qualifiers", response_model=CallThriveRead)
async def set_qualifiers(
    call_id: int,
    body: QualifiersSet,
    principal: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
    idem: IdempotencyDep,
) -> BaseModel | JSONResponse:
    """Set the call's qualifiers (the whole set; `[]` clears them), whatever its incident
    type: the call's current handler or a supervisor, while the call is live or in wrap-up.
    Returns and pushes the merged prompts (`prompts.updated`) and advice (`advice.updated`);
    422 `invalid_qualifiers` lists every problem as `details` [{field, reason}]."""
    return await idem.run(
        200, lambda: qualifiers.set_qualifiers(session, resources, call_id, body, principal)
    )
