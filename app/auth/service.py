"""Staff records and their bearer tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.models import ApiToken, Role, Staff
from app.db import utcnow
from app.errors import AppError

TOKEN_PREFIX = "fct_"
STAFF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


class StaffExists(AppError):
    status, code = 409, "staff_exists"


class StaffNotFound(AppError):
    status, code = 404, "staff_not_found"


class InvalidStaff(AppError):
    status, code = 422, "invalid_staff"


@dataclass(frozen=True)
class Principal:
    """Who is making a request: the staff member behind a token or a session cookie."""

    id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (no dictionary to attack) and
    # lets us find the token by an indexed equality lookup.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_staff(
    session: AsyncSession, *, staff_id: str, name: str, role: Role, actor: str
) -> Staff:
    if not STAFF_ID.match(staff_id):
        raise InvalidStaff("staff id must be 1-32 letters, digits, '.', '_' or '-'")
    if not name.strip() or len(name) > 200:
        raise InvalidStaff("name must be 1-200 characters")
    if await session.get(Staff, staff_id) is not None:
        raise StaffExists(f"staff {staff_id} already exists")
    staff = Staff(id=staff_id, name=name.strip(), role=role.value, active=True)
    session.add(staff)
    audit.record(
        session, actor=actor, action="collection", subject_type="staff", subject_id=staff_id
    )
    await session.flush()
    return staff


async def issue_token(session: AsyncSession, staff_id: str, *, actor: str) -> str:
    """Create a token for `staff_id` and return it in clear: the only time it exists so."""
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise StaffNotFound(f"no staff {staff_id}")
    token = new_token()
    session.add(ApiToken(staff_id=staff_id, token_hash=hash_token(token), prefix=token[:10]))
    audit.record(
        session,
        actor=actor,
        action="alteration",
        subject_type="staff",
        subject_id=staff_id,
        justification="token issued",
    )
    await session.flush()
    return token


async def revoke(
    session: AsyncSession, staff_id: str, *, actor: str, deactivate: bool = False
) -> int:
    """Revoke every live token of `staff_id`; with `deactivate` the account too."""
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise StaffNotFound(f"no staff {staff_id}")
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.staff_id == staff_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if deactivate:
        staff.active = False
    audit.record(
        session,
        actor=actor,
        action="alteration",
        subject_type="staff",
        subject_id=staff_id,
        justification="deactivated" if deactivate else "tokens revoked",
    )
    await session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


async def list_staff(session: AsyncSession) -> Sequence[Staff]:
    return (await session.scalars(select(Staff).order_by(Staff.id))).all()


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    """The active staff member behind a live token, or None."""
    found = await authenticate_token(session, token)
    return found[0] if found is not None else None


async def authenticate_token(session: AsyncSession, token: str) -> tuple[Principal, int] | None:
    """The active staff member behind a live token and the token's row id (a browser session
    remembers the id, so revoking the token ends the session), or None."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    row = (
        await session.execute(
            select(ApiToken.id, Staff.id.label("staff_id"), Staff.name, Staff.role)
            .join(Staff, Staff.id == ApiToken.staff_id)
            .where(
                ApiToken.token_hash == hash_token(token),
                ApiToken.revoked_at.is_(None),
                Staff.active.is_(True),
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(id=row.staff_id, name=row.name, role=Role(row.role)), int(row.id)
