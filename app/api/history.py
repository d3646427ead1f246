"""Mid-call history lookups by the call's handler (or a supervisor), and a call's stored
caller context. Every lookup that shows a record is in the consultation log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import CurrentStaff, ResourcesDep, SessionDep
from app.auth.models import Role
from app.auth.service import Principal
from app.calls.models import Call
from app.errors import Forbidden, NotFound, Unprocessable
from app.history import consultation
from app.history.stored_context import stored_context

router = APIRouter(prefix="/history", tags=["history"])


class HouseholdLookup(BaseModel):
    call_id: int
    households: list[dict[str, object]]


class CallContextRead(BaseModel):
    call_id: int
    context: dict[str, object]
    alerts: list[dict[str, object]]


async def _call_for(session: AsyncSession, call_id: int, staff: Principal) -> Call:
    call = await session.get(Call, call_id)
    if call is None:
        raise NotFound("no such call", details={"call_id": call_id})
    if staff.role in (Role.supervisor, Role.admin):
        return call
    if staff.role == Role.handler and (
        call.handler_id == staff.id or staff.id in (call.handlers or [])
    ):
        return call
    raise Forbidden("only the call's handler or a supervisor may look up history for it")


@router.get("/households", response_model=HouseholdLookup)
async def lookup_households(
    staff: CurrentStaff,
    session: SessionDep,
    resources: ResourcesDep,
    call_id: int,
    household_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    uprn: Annotated[str | None, Query(pattern=r"^\d{1,12}$")] = None,
    address: Annotated[str | None, Query(min_length=3, max_length=200)] = None,
) -> HouseholdLookup:
    """Households matching an id, a UPRN or part of an address, typed during a call."""
    given = [v for v in (household_id, uprn, address) if v is not None]
    if len(given) != 1:
        raise Unprocessable("give exactly one of household_id, uprn or address")
    await _call_for(session, call_id, staff)
    households = await consultation.lookup_households_for_handler(
        session,
        resources,
        call_id=call_id,
        actor=staff.actor,
        household_id=household_id,
        uprn=uprn,
        address=address,
    )
    return HouseholdLookup(call_id=call_id, households=households)


@router.get("/calls/{call_id}", response_model=CallContextRead)
async def call_context(staff: CurrentStaff, session: SessionDep, call_id: int) -> CallContextRead:
    """The caller context and alerts built for a call when it was offered."""
    await _call_for(session, call_id, staff)
    stored = await stored_context(session, call_id)
    if stored is None:
        raise NotFound("no caller context for this call yet", details={"call_id": call_id})
    context, alerts = stored
    consultation.log_consultation(session, context, actor=staff.actor, call_id=call_id)
    return CallContextRead(call_id=call_id, context=context, alerts=alerts)
