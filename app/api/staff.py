"""Who am I, and (for admins) who is on the system."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from app.api.deps import CurrentStaff, ResourcesDep, SessionDep, SettingsDep, StaffManager
from app.auth import service as auth
from app.auth.models import Role, Staff
from app.realtime import revocation

router = APIRouter(tags=["staff"])


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    role: str
    active: bool
    created_at: datetime


@router.get("/me", response_model=StaffRead)
async def me(principal: CurrentStaff, session: SessionDep) -> Staff:
    staff = await session.get(Staff, principal.id)
    assert staff is not None  # authenticate() only returns existing, active staff
    return staff


@router.get("/staff", response_model=list[StaffRead])
async def list_staff(_admin: StaffManager, session: SessionDep) -> list[Staff]:
    return list(await auth.list_staff(session))


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    role: Role


class StaffCreated(BaseModel):
    staff: StaffRead
    # Shown once; only its hash is stored.
    token: str


@router.post("/staff", response_model=StaffCreated, status_code=201)
async def create_staff(
    body: StaffCreate, admin: StaffManager, session: SessionDep, settings: SettingsDep
) -> StaffCreated:
    staff = await auth.create_staff(
        session, staff_id=body.id, name=body.name, role=body.role, actor=admin.actor
    )
    token = await auth.issue_token(
        session, staff.id, actor=admin.actor, max_age_days=settings.token_max_age_days
    )
    return StaffCreated(staff=StaffRead.model_validate(staff), token=token)


@router.post("/staff/{staff_id}/revoke", response_model=StaffRead)
async def revoke_staff(
    staff_id: str,
    admin: StaffManager,
    session: SessionDep,
    resources: ResourcesDep,
    deactivate: bool = False,
) -> Staff:
    """Revoke the staff member's tokens and end their browser sessions (with `deactivate`, the
    account too); their open sockets, on every worker, close before this answers."""
    ended = await auth.revoke(session, staff_id, actor=admin.actor, deactivate=deactivate)
    revocation.announce(session, resources, ended)
    staff = await session.get(Staff, staff_id)
    assert staff is not None
    return staff
